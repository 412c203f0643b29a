"""Operations: /health, /ready and /metrics of the real binary and of `python -m strategy_consumer` (the same
Service), JSON logs with correlation fields, secrets kept out of every output, and the container and Kubernetes
files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strategy_consumer.services import PostgresServer, free_port, repo_root

ROOT = repo_root()
MACD_OK = {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}


def strategy(i: int, score: float = 1.0, **extra) -> dict:
    """A valid message whose strategy_hash is ours to choose (so tests know which rows are new)."""
    return {"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "parameters": MACD_OK, "score": score,
            "strategy_hash": f"ops-{i}", **extra}


def invalid_for_validation(i: int) -> dict:
    return strategy(10_000 + i, parameters={"shortEmaPeriod": 100_000, "longEmaPeriod": 26, "signalPeriod": 9})


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what: str, predicate, timeout: float = 60, interval: float = 0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Service:
    """strategy-consumer as a service with its HTTP server on 127.0.0.1, stderr in a file (never a full pipe)."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.port = free_port()
        self.log_file = tempfile.NamedTemporaryFile(prefix="strategy-consumer-", suffix=".log", delete=False)
        self.out_file = tempfile.NamedTemporaryFile(prefix="strategy-consumer-", suffix=".out", delete=False)
        self.args = [a for a in args if not a.startswith(("--http_port", "--http_host"))]
        self.args += [f"--http_port={self.port}", "--http_host=127.0.0.1"]
        self.proc = subprocess.Popen(self.args, stdout=self.out_file, stderr=self.log_file, env=env)

    def get(self, path: str) -> tuple[int, str]:
        assert self.proc.poll() is None, f"strategy-consumer exited {self.proc.returncode}:\n{self.stderr()[-3000:]}"
        return get(self.port, path)

    def wait_http(self) -> None:
        def answers():
            try:
                return self.get("/health")[0] == 200
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_for("the HTTP server", answers, timeout=30)

    def metrics(self) -> dict:
        """{sample name: {frozenset(labels): value}} of /metrics, parsed by prometheus_client's parser."""
        status, body = self.get("/metrics")
        assert status == 200
        out: dict = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stderr(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def stdout(self) -> str:
        return Path(self.out_file.name).read_text(errors="replace")

    def close(self) -> None:
        self.stop()
        for f in (self.log_file, self.out_file):
            f.close()
            os.unlink(f.name)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def all_committed(env) -> bool:
    """The stored offset of every partition that has messages is its end offset (False before the schema)."""
    if env.query("SELECT to_regclass('strategy_consumer_offsets')") == [(None,)]:
        return False
    return env.stored_offsets() == {p: end for p, end in env.end_offsets().items() if end > 0}


def one(samples: dict, name: str, **labels) -> float:
    return samples.get(name, {}).get(frozenset(labels.items()), 0.0)


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no log lines"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"not a JSON log line: {line!r}") from e
    for p in parsed:
        assert {"time", "level", "message"} <= p.keys(), p
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", p["time"]), p["time"]
    return parsed


@pytest.fixture(params=["binary", "python -m"])
def program_env(request, env):
    """env whose consumer is the binary, then `python -m strategy_consumer`: both run the one C++ Service."""
    if request.param == "python -m":
        env.program = ["/usr/bin/python3", "-m", "strategy_consumer"]
    return env


# ---- /health and /ready ----

def test_ready_follows_postgresql_and_retries_while_health_stays_up(env):
    """/ready is 503 while the service's own PostgreSQL is stopped (idle, then stalled in retries) and 200 once
    it is back; /health stays 200 throughout."""
    with PostgresServer() as pg:
        database = pg.create_database("ops_ready")
        args = [a for a in env.flags() if not a.startswith(("--postgres_", "--http_port"))] + pg.flags(database)
        with Service(args + ["--kafka_property=statistics.interval.ms=500"]) as svc:
            svc.wait_http()
            wait_for("/ready 200", lambda: svc.get("/ready")[0] == 200)
            status, body = svc.get("/ready")
            assert json.loads(body)["status"] == "ready" and json.loads(body)["checks"]["assigned_partitions"] == 4

            env.produce([strategy(i) for i in range(5)], partition=0)
            wait_for("5 rows", lambda: _count(pg, database) == 5)

            pg.pause()
            try:
                def not_ready_for_postgres():
                    s, b = svc.get("/ready")
                    return s == 503 and "postgresql" in json.loads(b)["reason"] and b
                body = wait_for("/ready 503 (postgresql)", not_ready_for_postgres, timeout=30)
                assert json.loads(body)["status"] == "unavailable"
                assert svc.get("/health")[0] == 200

                # Messages now make the pipeline retry its write: stalled, still alive.
                env.produce([strategy(i) for i in range(5, 8)], partition=1)

                def stalled():
                    s, b = svc.get("/ready")
                    return s == 503 and json.loads(b)["reason"].startswith("stalled: retrying") and b
                body = wait_for("/ready 503 (stalled)", stalled, timeout=30)
                assert "write batch" in json.loads(body)["reason"]
                assert svc.get("/health")[0] == 200
                m = svc.metrics()
                assert one(m, "strategy_consumer_retries_total", target="write_batch") >= 1
                assert one(m, "strategy_consumer_stalled") == 1
            finally:
                pg.resume()

            wait_for("/ready 200 again", lambda: svc.get("/ready")[0] == 200, timeout=90)
            wait_for("8 rows", lambda: _count(pg, database) == 8, timeout=30)
            assert one(svc.metrics(), "strategy_consumer_stalled") == 0
            assert svc.stop() == 0


def test_ready_cannot_starve_health_and_says_nothing_of_hosts_or_users(env):
    """A PostgreSQL that never answers (a port that takes connections into its backlog and is never read): libpq
    waits its whole connect timeout there. Many /ready calls at once must not occupy the two HTTP workers (the
    kubelet gives /health 1 s), and /ready's body must not carry libpq's text: host, port, user name."""
    import socket
    import threading

    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(128)  # never accepted
    port = blackhole.getsockname()[1]
    user = "probe_user_name_secretive"
    args = [a for a in env.flags() if not a.startswith(("--postgres_", "--http_port"))] + [
        "--postgres_host=127.0.0.1", f"--postgres_port={port}", f"--postgres_username={user}",
        "--postgres_database=nowhere_database"]
    try:
        with Service(args) as svc:
            svc.wait_http()
            ready: list[tuple[float, int, str]] = []

            def call_ready():
                started = time.monotonic()
                status, body = get(svc.port, "/ready", timeout=15)
                ready.append((time.monotonic() - started, status, body))

            for _ in range(3):  # three waves of a dozen: each would hold a worker for the connect timeout
                threads = [threading.Thread(target=call_ready) for _ in range(12)]
                for t in threads:
                    t.start()
                time.sleep(0.2)
                for _ in range(5):
                    started = time.monotonic()
                    status, _ = get(svc.port, "/health", timeout=15)
                    took = time.monotonic() - started
                    assert status == 200
                    assert took < 0.5, f"/health took {took:.2f} s behind /ready calls"
                    time.sleep(0.1)
                for t in threads:
                    t.join()
                time.sleep(1)

            assert len(ready) == 36
            assert max(took for took, _, _ in ready) < 0.5
            for _, status, body in ready:
                assert status == 503
                reason = json.loads(body)["reason"]
                assert json.loads(body)["checks"]["database"] is False
                for leak in ("127.0.0.1", str(port), user, "nowhere_database", "connection to server"):
                    assert leak not in body, body
            reasons = {json.loads(b)["reason"] for _, _, b in ready}
            assert reasons <= {"postgresql: not checked yet", "postgresql: cannot connect"} | {
                r for r in reasons if r.startswith("stalled: retrying")}, reasons
            assert "postgresql: cannot connect" in reasons
            svc.stop()
            # What libpq said is for the operator's log.
            assert "readiness probe: PostgreSQL does not answer" in svc.stderr()
    finally:
        blackhole.close()
def test_a_write_blocked_on_a_lock_turns_health_unhealthy_after_the_limit_and_recovers(env):
    """Issue 15.5: two writers whose writes wait on a lock (as behind a hung session or a dead network path) keep
    heartbeating from the consumer thread; past --write_stall_seconds /health and /ready turn 503, the stalled
    gauge says so too, and everything recovers when the lock goes."""
    env.produce([strategy(0)], partition=0)
    with Service(env.flags("--write_stall_seconds=3", "--lock_timeout_seconds=0", "--writer_connections=2",
                           "--kafka_property=statistics.interval.ms=500")) as svc:
        svc.wait_http()
        wait_for("the first batch", lambda: all_committed(env), timeout=90)
        wait_for("/ready 200", lambda: svc.get("/ready")[0] == 200)
        other = env.pg.connect(env.database)
        try:
            other.autocommit = False
            with other.cursor() as cur:
                cur.execute("LOCK TABLE strategies IN ACCESS EXCLUSIVE MODE")
                env.produce([strategy(1)], partition=0)
                env.produce([strategy(2)], partition=1)  # the other writer
                wait_for("both writes to wait on the lock",
                         lambda: env.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                           " AND wait_event_type = 'Lock'") == [(2,)], timeout=60)
                started = time.time()
                assert svc.get("/health")[0] == 200, "within the limit: alive"

                def hung():
                    s, b = svc.get("/health")
                    return s == 503 and b
                body = json.loads(wait_for("/health 503", hung, timeout=20))
                assert time.time() - started >= 2, "not before the limit"
                assert body["reason"].startswith("hung: write batch in flight for "), body
                assert "(limit 3 s)" in body["reason"]

                # /ready and the gauge tell one story, sample after sample.
                for _ in range(5):
                    ready_status, ready_body = svc.get("/ready")
                    gauge = one(svc.metrics(), "strategy_consumer_stalled")
                    assert ready_status == 503 and gauge == 1, (ready_body, gauge)
                    assert json.loads(ready_body)["reason"].startswith("stalled: write batch in flight"), ready_body
                    assert json.loads(ready_body)["checks"]["stalled"] is True
                    time.sleep(0.2)
            other.rollback()
        finally:
            other.close()
        wait_for("/health 200 again", lambda: svc.get("/health")[0] == 200, timeout=30)
        wait_for("/ready 200 again", lambda: svc.get("/ready")[0] == 200, timeout=30)
        assert one(svc.metrics(), "strategy_consumer_stalled") == 0
        wait_for("everything committed", lambda: all_committed(env), timeout=30)
        assert env.query("SELECT count(*) FROM strategies") == [(3,)]
        assert svc.stop() == 0


def test_a_write_past_lock_timeout_is_retried_not_fatal(env):
    """--lock_timeout_seconds cuts off a write waiting for a lock (SQLSTATE 55P03): it is retried, and commits
    once the lock is gone; a drain job does not exit 1 because of it."""
    env.drain()  # the schema
    other = env.pg.connect(env.database)
    try:
        other.autocommit = False
        with other.cursor() as cur:
            cur.execute("LOCK TABLE strategies IN ACCESS EXCLUSIVE MODE")
        env.produce([strategy(1)], partition=0)
        proc = env.start("--lock_timeout_seconds=1", "--max_retries=10", "--idle_timeout_seconds=1",
                         "--log_format=text")
        wait_for("the write to wait on the lock",
                 lambda: env.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                   " AND wait_event_type = 'Lock'") == [(1,)], timeout=60, interval=0.05)
        time.sleep(3)  # a few attempts time out meanwhile
        other.rollback()
        _, stderr = proc.communicate(timeout=120)
    finally:
        other.close()
    assert proc.returncode == 0, stderr[-3000:]
    assert "lock timeout" in stderr and "retrying in" in stderr, stderr[-3000:]
    assert env.query("SELECT strategy_hash FROM strategies") == [("ops-1",)]


def _count(pg: PostgresServer, database: str) -> int:
    conn = pg.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM strategies")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_health_and_unknown_paths(program_env):
    env = program_env
    with Service(env.flags()) as svc:
        svc.wait_http()
        status, body = svc.get("/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert svc.get("/no-such-path")[0] == 404
        # Before its partitions arrive, or once they have, /ready answers JSON either way.
        status, body = svc.get("/ready")
        assert status in (200, 503) and json.loads(body)["status"] in ("ready", "unavailable")
        assert svc.stop() == 0
    # Nothing listens there any more: the server stopped with the process.
    with pytest.raises(urllib.error.URLError):
        get(svc.port, "/health", timeout=2)


def test_http_port_zero_serves_nothing_and_a_taken_port_is_a_config_error(env):
    result = env.drain("--http_port=0", "--log_format=text")
    assert "serving /health" not in result.stderr
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(env.flags(f"--http_port={port}", "--http_host=127.0.0.1", "--idle_timeout_seconds=1"),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"--http_port: cannot listen on 127.0.0.1:{port}" in r.stderr


# ---- /metrics ----

def test_metrics_parse_and_count_what_was_stored_and_dead_lettered(program_env):
    env = program_env
    round1 = [strategy(i, score=1.0) for i in range(24)]
    bad = [b"not json at all", b"\xff\xfe", invalid_for_validation(1)]
    for p in range(env.partitions):
        env.produce(round1[p::env.partitions], partition=p)
    env.produce(bad, partition=3)
    with Service(env.flags("--kafka_property=statistics.interval.ms=500", "--batch_size=10")) as svc:
        svc.wait_http()
        wait_for("round 1 committed", lambda: all_committed(env), timeout=90)
        # Round 2 after round 1 committed: these are updates of stored rows, and one new strategy twice.
        env.produce([strategy(i, score=2.0) for i in range(6)], partition=0)
        env.produce([strategy(100, score=1.0), strategy(100, score=3.0)], partition=2)
        wait_for("round 2 committed", lambda: all_committed(env), timeout=90)
        valid_messages = len(round1) + 6 + 2
        produced = valid_messages + len(bad)

        # Lag: every partition committed to its end (statistics every 500 ms, Kafka commits after PostgreSQL).
        def lag_zero():
            m = svc.metrics()
            lag = m.get("strategy_consumer_consumer_lag_messages", {})
            parts = {dict(k)["partition"]: v for k, v in lag.items() if dict(k)["topic"] == env.topic}
            return parts == {str(p): 0.0 for p in range(env.partitions)} and m
        m = wait_for("consumer lag 0 on every partition", lag_zero, timeout=30)

        rows, updated = env.query("SELECT count(*), count(*) FILTER (WHERE updated_at > created_at) FROM strategies")[0]
        letters = env.dead_letters(len(bad))
        assert len(letters) == len(bad)
        stages = {}
        for letter, _ in letters:
            stages[letter["stage"]] = stages.get(letter["stage"], 0) + 1

        new = one(m, "strategy_consumer_messages_total", outcome="stored_new")
        upd = one(m, "strategy_consumer_messages_total", outcome="stored_updated")
        dup = one(m, "strategy_consumer_messages_total", outcome="duplicate_in_batch")
        dead = one(m, "strategy_consumer_messages_total", outcome="dead_lettered")
        assert new == rows == 25
        assert upd == updated and upd + dup == 7  # six updates, and strategy 100 once more (update or duplicate)
        assert new + upd + dup == valid_messages
        assert dead == len(letters) == 3
        assert stages == {"decode": 2, "validate": 1}
        for stage, n in stages.items():
            assert one(m, "strategy_consumer_dead_letters_total", stage=stage) == n
        assert one(m, "strategy_consumer_dead_letters_total", stage="database") == 0

        batches = one(m, "strategy_consumer_batches_total")
        assert batches >= 2
        assert one(m, "strategy_consumer_batch_size_messages_count") == batches
        assert one(m, "strategy_consumer_batch_size_messages_sum") == produced  # every message in one batch
        assert one(m, "strategy_consumer_batch_size_messages_bucket", le="+Inf") == batches
        assert one(m, "strategy_consumer_database_write_seconds_count") == batches
        assert 0 < one(m, "strategy_consumer_database_write_seconds_sum") < 60
        assert abs(one(m, "strategy_consumer_last_commit_timestamp_seconds") - time.time()) < 120
        assert one(m, "strategy_consumer_batches_fenced_total") == 0
        assert one(m, "strategy_consumer_assigned_partitions") == env.partitions
        assert one(m, "strategy_consumer_kafka_brokers_up") >= 1
        version = re.search(r"project\(strategy_consumer VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text())[1]
        assert one(m, "strategy_consumer_build_info", version=version) == 1
        assert not any("rule" in name for name in m), "no rules configured: no rule metrics"
        assert all(name.startswith("strategy_consumer_") for name in m)
        assert svc.get("/ready")[0] == 200
        assert svc.stop() == 0

        # The binary's own summary agrees.
        summary = [p for p in json_lines(svc.stderr()) if p["message"].startswith("exiting")]
        assert summary and summary[-1]["stored_new"] == new and summary[-1]["dead_lettered"] == dead
        assert summary[-1]["messages"] == produced


# ---- logs ----

def test_every_log_line_is_json_with_correlation_fields(program_env):
    env = program_env
    good = [strategy(i) for i in range(6)]
    env.produce(good[:3] + [b"{broken", invalid_for_validation(7)] + good[3:], partition=1)
    env.produce([strategy(50)], partition=2)
    # stderr is a pipe: JSON by default. librdkafka's debug lines come from its own threads through the same logger.
    result = env.drain("--verbosity=1", "--kafka_property=debug=cgrp")
    lines = json_lines(result.stderr)

    batches = [p for p in lines if re.match(r"batch \d+: ", p["message"])]
    assert batches
    covered = {}
    for p in batches:
        assert isinstance(p["batch_id"], int) and p["topic"] == env.topic
        assert p["message"].startswith(f"batch {p['batch_id']}: ")
        for part in p["partitions"]:
            assert part["topic"] == env.topic and part["first_offset"] <= part["last_offset"]
            covered.setdefault(part["partition"], []).append((part["first_offset"], part["last_offset"]))
    # The offset ranges of the committed batches cover exactly what was produced.
    assert {p: (min(r[0] for r in rs), max(r[1] for r in rs)) for p, rs in covered.items()} == {1: (0, 7), 2: (0, 0)}

    letters = [p for p in lines if p["message"].startswith("dead-lettering")]
    assert len(letters) == 2
    by_stage = {p["stage"]: p for p in letters}
    assert by_stage["decode"]["offset"] == 3 and by_stage["validate"]["offset"] == 4
    for p in letters:
        assert p["topic"] == env.topic and p["partition"] == 1 and p["level"] == "warning"
        # The batch that committed the letter's offset.
        batch = next(b for b in batches if b["batch_id"] == p["batch_id"])
        assert any(part["partition"] == 1 and part["first_offset"] <= p["offset"] <= part["last_offset"]
                   for part in batch["partitions"])
    assert by_stage["validate"]["strategy_hash"] == "ops-10007"
    assert "strategy_hash" not in by_stage["decode"]  # nothing decoded, no hash

    exiting = [p for p in lines if p["message"].startswith("exiting (idle)")]
    assert len(exiting) == 1 and exiting[0]["stored_new"] == 7 and exiting[0]["dead_lettered"] == 2
    rdkafka = [p for p in lines if p["message"].startswith("librdkafka ")]
    assert rdkafka and all(p["component"] == "librdkafka" and p["facility"] for p in rdkafka)


def test_text_format_on_request(program_env):
    env = program_env
    env.produce([strategy(1)], partition=0)
    result = env.drain("--log_format=text")
    lines = result.stderr.strip().splitlines()
    assert lines and all(not line.startswith("{") for line in lines)
    batch = [line for line in lines if re.search(r" info batch \d+: ", line)]
    assert batch and f"topic={env.topic}" in batch[0] and "batch_id=1" in batch[0]
    bad = subprocess.run(env.flags("--log_format=xml"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--log_format" in bad.stderr


# ---- secrets ----

def test_passwords_never_appear_in_any_output(program_env):
    env = program_env
    pg_secret = "pg-Secret-7f3a9c"
    sasl_secret = "sasl-Secret-b81e44"
    proc_env = dict(os.environ, POSTGRES_PASSWORD=pg_secret)
    secret_flags = [f"--kafka_property=sasl.password={sasl_secret}", "--kafka_property=sasl.username=ops",
                    "--kafka_property=debug=conf,generic", "--verbosity=2"]
    env.produce([strategy(1), b"not json", invalid_for_validation(2)], partition=0)
    seen = []
    with Service(env.flags(*secret_flags, "--kafka_property=statistics.interval.ms=500"), env=proc_env) as svc:
        svc.wait_http()
        wait_for("all committed", lambda: all_committed(env), timeout=90)
        for path in ("/health", "/ready", "/metrics"):
            seen.append(svc.get(path)[1])
        assert svc.stop() == 0
        seen += [svc.stdout(), svc.stderr()]
        assert "librdkafka" in svc.stderr(), "debug logging of librdkafka reached the log"
    letters = env.dead_letters(2)
    assert len(letters) == 2
    seen += [json.dumps(letter) + json.dumps(headers) for letter, headers in letters]
    for fmt in ("json", "text"):
        r = subprocess.run(env.flags(*secret_flags, f"--log_format={fmt}", "--idle_timeout_seconds=1"),
                           capture_output=True, text=True, timeout=120, env=proc_env)
        assert r.returncode == 0, r.stderr[-3000:]
        seen += [r.stdout, r.stderr]
    help_run = subprocess.run([*env.program, "--help", *secret_flags,
                               f"--postgres_password={pg_secret}"], capture_output=True, text=True, env=proc_env)
    assert help_run.returncode == 0 and "--http_port" in help_run.stdout
    seen += [help_run.stdout, help_run.stderr]
    # A bad value next to the secrets: the error names the flag, not the values.
    bad = subprocess.run(env.flags(*secret_flags, "--batch_size=0"), capture_output=True, text=True, env=proc_env)
    assert bad.returncode == 2
    seen += [bad.stdout, bad.stderr]
    everything = "\n".join(seen)
    assert pg_secret not in everything
    assert sasl_secret not in everything
