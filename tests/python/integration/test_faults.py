"""Reliability under faults, proven by injecting them into the real binary, PostgreSQL and the dev broker.

Every test installs a trigger that records each time a row of `strategies` is inserted or updated, and gives every
message its own `strategy_hash`, so "applied exactly once" is a query: every hash recorded once, none missing.
After each fault the rows must be exactly the messages below the stored offsets (nothing lost, nothing committed
ahead of its data), and in the end the offsets table must equal the end offsets of the topic.

The kill -9 loop drains STRATEGY_CONSUMER_FAULT_SCALE messages: `small` (the default, 20,000, what scripts/test
runs) or `full` (100,000, the issue's count). A number is taken as the message count. Both run the same code:

    STRATEGY_CONSUMER_FAULT_SCALE=full /usr/bin/python3 -m pytest -q -p no:cacheprovider \\
        tests/python/integration/test_faults.py

The kill moments are random; the test prints its seed, and STRATEGY_CONSUMER_FAULT_SEED=<seed> repeats them.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Callable, Optional

import pytest

from conftest import Env
from strategy_consumer import samples
from strategy_consumer.services import DevBroker, PostgresServer, free_port

_SCALES = {"small": 20_000, "full": 100_000}
_scale = os.environ.get("STRATEGY_CONSUMER_FAULT_SCALE", "small").strip().lower() or "small"
KILL_LOOP_MESSAGES = _SCALES[_scale] if _scale in _SCALES else int(_scale)
KILLS = 10
# A killed member's partitions move only when its session expires: short sessions keep the loop fast. A JoinGroup
# the dev broker leaves unanswered is retried only after max.poll.interval.ms (seen once: 306 s with the default).
FAST_SESSION = ("--kafka_property=session.timeout.ms=3000", "--kafka_property=heartbeat.interval.ms=300",
                "--kafka_property=max.poll.interval.ms=30000")


# --------------------------------------------------------------------------------------------------- helpers

def distinct_strategies(n: int, tag: str, seed: int = 1) -> list[dict]:
    """n realistic messages, each a strategy of its own (explicit, distinct strategy_hash)."""
    out = []
    for i, m in enumerate(samples.sample_stream(n, seed=seed, rediscover_ratio=0)):
        m["strategy_hash"] = f"{tag}-{i:07d}"
        out.append(m)
    return out


def produce_spread(env: Env, msgs: list[dict]) -> dict[int, list[str]]:
    """Produces msgs round-robin over the partitions; returns each partition's hashes in offset order."""
    layout = {}
    for p in range(env.partitions):
        part = msgs[p::env.partitions]
        if part:
            env.produce(part, partition=p)
        layout[p] = [m["strategy_hash"] for m in part]
    return layout


def flags_for_group(env: Env, group: str, *extra: str) -> list[str]:
    return [f for f in env.flags(*extra) if not f.startswith("--kafka_group_id=")] + [f"--kafka_group_id={group}"]


def prepare(env: Env) -> None:
    """Creates the schema (through a consumer of another group, so the test's group starts fresh) and the
    trigger that counts applications."""
    result = subprocess.run(flags_for_group(env, f"schema-{uuid.uuid4().hex[:8]}",
                                            "--max_processing_time_seconds=0.01"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    with env.conn.cursor() as cur:
        cur.execute("CREATE TABLE applied (strategy_hash text NOT NULL, at timestamptz DEFAULT clock_timestamp())")
        cur.execute("CREATE FUNCTION count_apply() RETURNS trigger AS $$ BEGIN"
                    " INSERT INTO applied (strategy_hash) VALUES (NEW.strategy_hash); RETURN NEW; END"
                    " $$ LANGUAGE plpgsql")
        cur.execute("CREATE TRIGGER count_apply AFTER INSERT OR UPDATE ON strategies"
                    " FOR EACH ROW EXECUTE FUNCTION count_apply()")


def reconnect(env: Env) -> None:
    """Drops the test's own connection (after the server restarted under it)."""
    if env._conn is not None:
        try:
            env._conn.close()
        except Exception:
            pass
        env._conn = None


def applied_counts(env: Env) -> dict[str, int]:
    return dict(env.query("SELECT strategy_hash, count(*) FROM applied GROUP BY strategy_hash"))


def snapshot(env: Env) -> tuple[dict[int, int], dict[str, int]]:
    """The stored offsets and the applications per hash, read in one statement (one snapshot: a commit landing
    between two queries would make them disagree)."""
    [(offsets, counts)] = env.query(
        "SELECT (SELECT coalesce(json_object_agg(kafka_partition, next_offset), '{}') FROM strategy_consumer_offsets"
        "        WHERE group_id = %s AND topic = %s),"
        "       (SELECT coalesce(json_object_agg(strategy_hash, c), '{}') FROM"
        "         (SELECT strategy_hash, count(*) c FROM applied GROUP BY strategy_hash) s)", env.group, env.topic)
    return {int(p): o for p, o in offsets.items()}, counts


def assert_rows_match_offsets(env: Env, layout: dict[int, list[str]]) -> int:
    """The consistency that must hold at any moment: the strategies applied are exactly the messages below each
    partition's stored offset, each applied once. Returns how many that is."""
    stored, counts = snapshot(env)
    expected = set()
    for p, hashes in layout.items():
        expected.update(hashes[:stored.get(p, 0)])
    twice = {h: c for h, c in counts.items() if c != 1}
    assert not twice, f"applied more than once: {list(twice.items())[:5]}"
    missing = expected - counts.keys()
    ahead = counts.keys() - expected
    assert not missing, f"{len(missing)} message(s) below the stored offsets were never applied: {sorted(missing)[:5]}"
    assert not ahead, f"{len(ahead)} message(s) applied beyond the stored offsets: {sorted(ahead)[:5]}"
    assert_history_matches_offsets(env, layout)
    return len(expected)


def history_positions(env: Env) -> tuple[dict[int, int], list[tuple[int, int, str]]]:
    """The stored offsets and the score history's (partition, offset, strategy_hash) rows of the topic, in one
    statement (one snapshot)."""
    [(offsets, rows)] = env.query(
        "SELECT (SELECT coalesce(json_object_agg(kafka_partition, next_offset), '{}') FROM strategy_consumer_offsets"
        "        WHERE group_id = %s AND topic = %s),"
        "       (SELECT coalesce(json_agg(json_build_array(source_partition, source_offset, strategy_hash)), '[]')"
        "        FROM strategy_score_history WHERE source_topic = %s)", env.group, env.topic, env.topic)
    return {int(p): o for p, o in offsets.items()}, sorted(tuple(r) for r in rows)


def assert_history_matches_offsets(env: Env, layout: dict[int, list[str]]) -> None:
    """The score history holds exactly one row per message below the stored offsets, at its source position (a
    rolled-back, retried or fenced batch wrote none; a committed one all of its own)."""
    stored, rows = history_positions(env)
    expected = sorted((p, o, hashes[o]) for p, hashes in layout.items() for o in range(stored.get(p, 0)))
    assert len(rows) == len(set(rows)), "a message has two history rows"
    assert rows == expected, (f"{len(rows)} history rows, {len(expected)} messages below the stored offsets; "
                              f"first difference: {next((a, b) for a, b in zip(rows + [None], expected + [None]) if a != b)}")


def assert_all_applied_once(env: Env, layout: dict[int, list[str]]) -> None:
    total = sum(len(h) for h in layout.values())
    assert env.stored_offsets() == env.end_offsets() == {p: len(h) for p, h in layout.items()}
    assert assert_rows_match_offsets(env, layout) == total
    assert env.query("SELECT count(*) FROM strategies") == [(total,)]


def log_messages(text: str) -> list[str]:
    """The message of each log line, whether the binary logs JSON (its default off a terminal) or text."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line).get("message", ""))
                continue
            except ValueError:
                pass
        out.append(line)
    return out


BATCH_LINE = re.compile(r"^batch (\d+): (\d+) message\(s\): (\d+) new, (\d+) updated, (\d+) duplicate\(s\) in batch,"
                        r" (\d+) dead-lettered")
STATEMENTS = re.compile(r"; (\d+) row statement\(s\)")


def batch_lines(messages: list[str]) -> list[re.Match]:
    return [m for m in map(BATCH_LINE.match, messages) if m]


def committed_messages(c: "Consumer") -> int:
    return sum(int(m.group(2)) for m in batch_lines(c.messages()))


def http_get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Consumer:
    """One strategy-consumer process, its log in a file (a pipe nobody reads would block it)."""

    def __init__(self, args: list[str], name: str):
        self.name = name
        self._log = tempfile.NamedTemporaryFile(prefix=f"strategy-consumer-{name}-", suffix=".log", delete=False)
        self.path = Path(self._log.name)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log)
        self.started = time.time()

    def log(self) -> str:
        return self.path.read_text(errors="replace")

    def messages(self) -> list[str]:
        return log_messages(self.log())

    def batches(self) -> int:
        return len(batch_lines(self.messages()))

    def count(self, needle: str) -> int:
        return sum(needle in m for m in self.messages())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, condition: Callable[["Consumer"], bool], timeout: float, what: str) -> None:
        def check():
            if condition(self):
                return True
            if not self.alive():
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before {what}:\n"
                                     + self.tail())
            return False
        try:
            wait_until(check, timeout, f"{self.name}: {what}", interval=0.02)
        except AssertionError as e:
            if "timed out" in str(e):
                raise AssertionError(f"{e}\n{self.tail()}") from None
            raise

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, deadline: float) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took). Fails when it takes longer than `deadline`."""
        t = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} still running {deadline} s after SIGTERM:\n{self.tail()}")
        return rc, time.time() - t

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not finish within {timeout} s:\n{self.tail()}") from None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.messages()[-lines:])

    def stop(self) -> None:
        """For finally blocks: whatever state it is in, it is gone afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()
        self.path.unlink(missing_ok=True)


class Producer(threading.Thread):
    """Produces messages at a steady rate from a thread (the stream goes on while faults happen)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, msgs: list[dict], per_second: float):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.msgs, self.per_second = msgs, per_second
        self.error: Optional[BaseException] = None
        self.layout = {p: [m["strategy_hash"] for m in msgs[p::partitions]] for p in range(partitions)}

    def run(self):
        from confluent_kafka import Producer as KafkaProducer

        try:
            producer = KafkaProducer({"bootstrap.servers": self.bootstrap, "linger.ms": 5,
                                      "enable.idempotence": True})
            failures = []
            started = time.time()
            for i, m in enumerate(self.msgs):
                # Round-robin, so that each partition's order is the order of msgs[p::partitions].
                producer.produce(self.topic, json.dumps(m).encode(), partition=i % self.partitions,
                                 on_delivery=lambda err, _m: err and failures.append(err))
                producer.poll(0)
                ahead = (i + 1) / self.per_second - (time.time() - started)
                if ahead > 0:
                    time.sleep(ahead)
            remaining = producer.flush(120)
            assert remaining == 0 and not failures, f"{remaining} undelivered, {failures[:3]}"
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout: float = 180) -> None:
        self.join(timeout)
        assert not self.is_alive(), "producer thread did not finish"
        if self.error:
            raise self.error


@pytest.fixture
def own_pg():
    """A PostgreSQL of this test's own, to restart or stop without touching the other tests. Commits are
    synchronous, as on a real server."""
    with PostgresServer(settings={"synchronous_commit": "on"}) as server:
        yield server


@pytest.fixture
def own_kafka():
    """A dev broker of this test's own, to take down without touching the other tests."""
    with DevBroker() as broker:
        yield broker


def make_env(pg, kafka, partitions) -> Env:
    env = Env(pg, kafka, partitions=partitions)
    prepare(env)
    return env


# ----------------------------------------------------------------------------------------------------- tests

def test_kill_9_at_random_moments_then_finish(pg, kafka):
    """kill -9 the consumer at a random moment of a drain, KILLS times in a row, then let it finish."""
    seed = int(os.environ.get("STRATEGY_CONSUMER_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    # ~490 bytes a message: 32 partitions keep 100,000 of them well under the dev broker's 5 MiB per partition.
    env = make_env(pg, kafka, partitions=32)
    consumers = []
    try:
        layout = produce_spread(env, distinct_strategies(KILL_LOOP_MESSAGES, "kill"))
        extra = ("--batch_size=250", *FAST_SESSION)
        share = KILL_LOOP_MESSAGES // (2 * KILLS)
        kills = []
        for k in range(KILLS):
            # A fast machine (a drain job starts reading at once) can drain faster than the kills come: topped up
            # so that every kill still hits a drain in progress. New messages go after the old in each partition.
            remaining = sum(len(h) for h in layout.values()) - sum(env.stored_offsets().values())
            if remaining < 2 * share:
                more = produce_spread(env, distinct_strategies(2 * share, f"kill-more{k}", seed=100 + k))
                layout = {p: layout[p] + more.get(p, []) for p in layout}
            c = Consumer(env.flags("--idle_timeout_seconds=1", *extra), f"life{k}")
            consumers.append(c)
            # A random moment: once this life has committed a random number of messages (at most its share of
            # the topic, so that every kill, however fast the machine, hits a drain in progress), then a random
            # fraction of a batch later: mid-read, mid-COPY, mid-COMMIT, between COMMIT and the Kafka commit, ...
            target = rng.randint(1, share)
            c.wait_for(lambda c: committed_messages(c) >= target, 120, f"{target} committed messages")
            time.sleep(rng.uniform(0, 0.1))
            assert c.alive(), f"life {k} finished the drain before it was killed (seed {seed})"
            c.kill9()
            kills.append((round(time.time() - c.started, 2), c.batches()))
            c.stop()
            # Whatever the moment, the rows are exactly the messages below the stored offsets.
            assert_rows_match_offsets(env, layout)
        applied_before_finish = len(applied_counts(env))
        assert applied_before_finish > 0
        # Every kill hit a live drain (asserted above); the final run finishes one too, whatever the last life
        # got through before its kill: new messages after the old in each partition.
        more = produce_spread(env, distinct_strategies(share, "kill-final", seed=99))
        layout = {p: layout[p] + more.get(p, []) for p in layout}
        total = sum(len(h) for h in layout.values())
        final = Consumer(env.flags("--idle_timeout_seconds=1", *extra), "final")
        consumers.append(final)
        assert final.wait(300) == 0, final.tail()
        assert_all_applied_once(env, layout)
        print(f"seed {seed}: {total} messages, {KILLS} kills (seconds alive, batches committed): "
              f"{kills}; {applied_before_finish} applied before the final run")
    finally:
        for c in consumers:
            c.stop()
        env.close()


def test_postgres_restart_immediate_mid_drain(own_pg, kafka):
    env = make_env(own_pg, kafka, partitions=16)
    c = None
    try:
        layout = produce_spread(env, distinct_strategies(20_000, "pgrestart"))
        c = Consumer(env.flags("--idle_timeout_seconds=1", "--batch_size=250", "--max_retries=10"), "pg-restart")
        c.wait_for(lambda c: c.batches() >= 1, 120, "its first committed batch")
        reconnect(env)
        own_pg.restart("immediate")
        assert c.wait(180) == 0, c.tail()
        assert c.count("failed (attempt") >= 1, "the restart was not noticed:\n" + c.tail()
        assert_all_applied_once(env, layout)
    finally:
        if c:
            c.stop()
        reconnect(env)
        env.close()


def test_postgres_down_drain_gives_up_service_retries_sigterm_abandons(own_pg, kafka):
    """PostgreSQL gone for good: a drain job exits 1 after --max_retries with nothing committed past the failure;
    a service keeps retrying past --max_retries and SIGTERM abandons its open batch and exits 0."""
    env = make_env(own_pg, kafka, partitions=4)
    consumers = []
    try:
        layout = produce_spread(env, distinct_strategies(20_000, "pgdown"))

        drain = Consumer(env.flags("--idle_timeout_seconds=1", "--batch_size=100", "--max_retries=2"), "drain")
        consumers.append(drain)
        drain.wait_for(lambda c: c.batches() >= 1, 120, "its first committed batch")
        reconnect(env)
        own_pg.pause("immediate")
        assert drain.wait(60) == 1, drain.tail()
        assert drain.count("giving up") >= 1  # each writer that runs out of retries before the stop says so
        own_pg.resume()
        done = assert_rows_match_offsets(env, layout)
        # Usually part of the work; all of it when the consumer had fetched every message before the brokers
        # went (its local queue holds up to 32 MiB): it then exits 1 only for the Kafka commit and the idle check.
        assert 0 < done <= 20_000

        service = Consumer(env.flags("--batch_size=100", "--max_retries=1"), "service")
        consumers.append(service)
        service.wait_for(lambda c: c.batches() >= 1, 120, "its first committed batch")
        reconnect(env)
        own_pg.pause("immediate")
        # More failures than --max_retries, and still running.
        service.wait_for(lambda c: c.count("write batch failed (attempt 3)") >= 1, 60, "a third failed write")
        rc, took = service.terminate(deadline=20)
        assert rc == 0, service.tail()
        assert service.count("abandoned") >= 1, service.tail()
        own_pg.resume()
        assert_rows_match_offsets(env, layout)

        final = Consumer(env.flags("--idle_timeout_seconds=1"), "final")
        consumers.append(final)
        assert final.wait(180) == 0, final.tail()
        assert_all_applied_once(env, layout)
        print(f"SIGTERM while retrying: exit 0 after {took:.2f} s")
    finally:
        for c in consumers:
            c.stop()
        reconnect(env)
        env.close()


def test_broker_down_for_20_seconds(pg, own_kafka):
    env = make_env(pg, own_kafka, partitions=8)
    c = None
    try:
        first = distinct_strategies(10_000, "brokerdown", seed=3)
        during = distinct_strategies(10_000, "brokerdown-late", seed=4)
        layout = produce_spread(env, first)
        c = Consumer(env.flags("--batch_size=250", *FAST_SESSION), "broker-down")
        c.wait_for(lambda c: c.batches() >= 1, 120, "its first committed batch")
        own_kafka.command("down-all")
        downed = time.time()
        # The stream goes on: the discovery pipeline's producer buffers while the broker is away.
        producer = Producer(own_kafka.bootstrap, env.topic, env.partitions, during, per_second=2000)
        producer.start()
        time.sleep(20)
        assert c.alive(), c.tail()
        before_up = len(applied_counts(env))
        own_kafka.command("up-all")
        up_after = time.time() - downed
        producer.finish()
        for p in range(env.partitions):
            layout[p] = layout[p] + producer.layout[p]
        total = 20_000
        wait_until(lambda: len(applied_counts(env)) >= total and env.stored_offsets() == env.end_offsets(), 180,
                   "every message after the broker came back")
        rc, took = c.terminate(deadline=20)
        assert rc == 0, c.tail()
        assert before_up < total
        assert_all_applied_once(env, layout)
        print(f"broker down {up_after:.1f} s; {before_up} applied when it came back; SIGTERM exit in {took:.2f} s")
    finally:
        if c:
            c.stop()
        env.close()


def test_brokers_gone_drain_gives_up_without_committing_past_its_data(pg, own_kafka):
    """Every broker unreachable for longer than the retries allow (at least one capped interval, 30 s): a drain job
    exits 1 with what it committed consistent, and the next run finishes the work exactly once."""
    env = make_env(pg, own_kafka, partitions=4)
    consumers = []
    try:
        layout = produce_spread(env, distinct_strategies(20_000, "kafkagone", seed=5))
        # A small prefetch queue (1 MiB, some 2,000 messages): the brokers go down with most of the topic unread,
        # however fast the first fetches were.
        drain = Consumer(env.flags("--idle_timeout_seconds=1", "--batch_size=50", "--max_retries=1",
                                   "--kafka_property=statistics.interval.ms=1000",
                                   "--kafka_property=queued.max.messages.kbytes=1024"), "kafka-gone")
        consumers.append(drain)
        drain.wait_for(lambda c: c.batches() >= 1, 120, "its first committed batch")
        own_kafka.command("down-all")
        downed = time.time()
        assert drain.wait(90) == 1, drain.tail()
        took = time.time() - downed
        assert 30 <= took < 60, f"gave up {took:.1f} s after the brokers went down"
        assert drain.count("giving up (drain mode, --max_retries=1)") == 1, drain.tail()
        done = assert_rows_match_offsets(env, layout)
        # Usually part of the work; all of it when the consumer had fetched every message before the brokers
        # went (its local queue holds up to 32 MiB): it then exits 1 only for the Kafka commit and the idle check.
        assert 0 < done <= 20_000
        own_kafka.command("up-all")

        final = Consumer(env.flags("--idle_timeout_seconds=1"), "after-kafka")
        consumers.append(final)
        assert final.wait(180) == 0, final.tail()
        assert_all_applied_once(env, layout)
        print(f"brokers down: the drain job gave up after {took:.1f} s with {done} applied")
    finally:
        for c in consumers:
            c.stop()
        env.close()


def test_three_consumers_one_killed_fourth_joins_mid_stream(pg, kafka):
    env = make_env(pg, kafka, partitions=6)
    consumers = []
    try:
        msgs = distinct_strategies(24_000, "group", seed=5)
        producer = Producer(kafka.bootstrap, env.topic, env.partitions, msgs, per_second=2000)
        for i in range(3):
            consumers.append(Consumer(env.flags("--batch_size=200", *FAST_SESSION), f"member{i + 1}"))
        for c in consumers:
            c.wait_for(lambda c: c.count("assigned ") >= 1, 120, "its partitions")
        producer.start()
        victim = consumers[0]
        victim.wait_for(lambda c: c.batches() >= 3, 120, "three committed batches")
        time.sleep(random.uniform(0, 0.3))
        victim.kill9()
        time.sleep(1)
        fourth = Consumer(env.flags("--batch_size=200", *FAST_SESSION), "member4")
        consumers.append(fourth)
        producer.finish()
        wait_until(lambda: len(applied_counts(env)) >= len(msgs) and env.stored_offsets() == env.end_offsets(), 180,
                   "every message")
        assert fourth.count("assigned ") >= 1, "the fourth consumer never got partitions:\n" + fourth.tail()
        for c in consumers[1:]:
            rc, _ = c.terminate(deadline=20)
            assert rc == 0, c.tail()
        assert_all_applied_once(env, producer.layout)
    finally:
        for c in consumers:
            c.stop()
        env.close()


def test_stale_owner_is_fenced(env):
    """Another writer commits a partition's next messages while this consumer's transaction for them waits on the
    offsets row (what a consumer that lost the partition in a rebalance looks like to the new owner, and the
    reverse): the waiting transaction is rolled back, nothing is applied twice, and the consumer goes on from the
    stored offset."""
    prepare(env)
    msgs = distinct_strategies(15, "fence", seed=9)
    env.produce(msgs[:5], partition=0)
    c = Consumer(env.flags(), "fenced")
    other = env.pg.connect(env.database)
    try:
        wait_until(lambda: env.stored_offsets().get(0) == 5, 120, "the first batch")
        other.autocommit = False
        with other.cursor() as cur:
            # The other writer takes the partition's offsets row first ...
            cur.execute("SELECT next_offset FROM strategy_consumer_offsets WHERE group_id = %s AND topic = %s"
                        " AND kafka_partition = 0 FOR UPDATE", (env.group, env.topic))
            assert cur.fetchall() == [(5,)]
            env.produce(msgs[5:10], partition=0)
            # ... so the consumer's write of offsets 5..9 waits for it ...
            wait_until(lambda: env.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND wait_event_type = 'Lock'") == [(1,)], 60, "the consumer's write to wait")
            # ... while it applies those messages itself and moves the offset past them.
            for m in msgs[5:10]:
                cur.execute("INSERT INTO strategies (symbol, strategy_type, parameters, current_score, strategy_hash)"
                            " VALUES (%s, %s, %s, %s, %s)", (m["symbol"], m["strategy_type"],
                                                              json.dumps(m["parameters"]), m["current_score"],
                                                              m["strategy_hash"]))
            cur.execute("UPDATE strategy_consumer_offsets SET next_offset = 10 WHERE group_id = %s AND topic = %s"
                        " AND kafka_partition = 0", (env.group, env.topic))
        other.commit()
        c.wait_for(lambda c: c.count("abandoned: offsets of topic") == 1, 60, "its batch to be fenced")
        # It goes on from the stored offset.
        env.produce(msgs[10:], partition=0)
        wait_until(lambda: env.stored_offsets().get(0) == 15, 60, "the messages after the fence")
        rc, _ = c.terminate(deadline=20)
        assert rc == 0, c.tail()
        counts = applied_counts(env)
        assert counts == {m["strategy_hash"]: 1 for m in msgs}
        assert env.stored_offsets() == {0: 15}
        # The fenced batch (offsets 5..9, applied by the other writer) left no history; the rest has one row each.
        assert history_positions(env)[1] == [(0, o, msgs[o]["strategy_hash"]) for o in (*range(5), *range(10, 15))]
    finally:
        other.close()
        c.stop()


def test_sigterm_breaks_off_a_write_blocked_in_postgresql(env):
    """SIGTERM while the open batch's transaction waits in PostgreSQL (here on a lock another session holds, as
    behind a long migration or a hung server): after --shutdown_timeout_seconds the write is broken off, nothing of
    the batch commits, the consumer exits 0, and the next run applies the batch exactly once."""
    prepare(env)
    msgs = distinct_strategies(20, "shutdown", seed=11)
    env.produce(msgs[:10], partition=0)
    c = Consumer(env.flags("--shutdown_timeout_seconds=2"), "shutdown")
    other = env.pg.connect(env.database)
    try:
        wait_until(lambda: env.stored_offsets().get(0) == 10, 120, "the first batch")
        other.autocommit = False
        with other.cursor() as cur:
            cur.execute("LOCK TABLE strategies IN ACCESS EXCLUSIVE MODE")
            env.produce(msgs[10:], partition=0)
            wait_until(lambda: env.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND wait_event_type = 'Lock'") == [(1,)], 60, "the consumer's write to wait")
            rc, took = c.terminate(deadline=15)
            assert rc == 0, c.tail()
            assert 2 <= took < 6, f"exit {took:.2f} s after SIGTERM with a 2 s shutdown timeout"
            assert c.count("did not commit within 2 s of the stop request") == 1, c.tail()
            assert c.count("abandoned") == 1, c.tail()
            # The server noticed: no session of the consumer is left waiting.
            wait_until(lambda: env.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND wait_event_type = 'Lock'") == [(0,)], 10, "the write to be gone")
        other.rollback()
        assert env.stored_offsets() == {0: 10}
        assert set(applied_counts(env)) == {m["strategy_hash"] for m in msgs[:10]}

        again = Consumer(env.flags("--idle_timeout_seconds=1"), "after-shutdown")
        try:
            assert again.wait(120) == 0, again.tail()
        finally:
            again.stop()
        assert applied_counts(env) == {m["strategy_hash"]: 1 for m in msgs}
        assert env.stored_offsets() == {0: 20}
        print(f"SIGTERM with the write blocked: exit 0 after {took:.2f} s")
    finally:
        other.close()
        c.stop()


def test_poison_row_is_isolated_in_log_n_statements(env):
    prepare(env)
    msgs = distinct_strategies(1000, "poison", seed=6)
    poison = random.randrange(1000)
    poison_hash = msgs[poison]["strategy_hash"]
    # A value PostgreSQL refuses for this row only: a CHECK constraint (SQLSTATE 23514, a constraint error).
    with env.conn.cursor() as cur:
        cur.execute(f"ALTER TABLE strategies ADD CONSTRAINT not_this_one CHECK (strategy_hash <> '{poison_hash}')")
    env.produce(msgs, partition=0)
    result = env.drain("--batch_size=1000")

    rows = {h for (h,) in env.query("SELECT strategy_hash FROM strategies")}
    assert rows == {m["strategy_hash"] for m in msgs} - {poison_hash}
    counts = applied_counts(env)
    assert len(counts) == 999 and set(counts.values()) == {1}
    assert env.stored_offsets()[0] == 1000

    letters = env.dead_letters(1)
    assert len(letters) == 1
    letter, headers = letters[0]
    assert letter["stage"] == "database" and headers["dlq.stage"] == "database"
    assert letter["source_partition"] == 0 and letter["source_offset"] == poison
    assert letter["reasons"][0]["rule"] == "database.23514"
    assert "not_this_one" in letter["reasons"][0]["message"]
    assert json.loads(letter["original_message"])["strategy_hash"] == poison_hash

    lines = batch_lines(log_messages(result.stderr))
    assert len(lines) == 1, lines
    messages, new, dead = (int(lines[0].group(i)) for i in (2, 3, 6))
    statements = int(STATEMENTS.search(lines[0].string).group(1))
    assert (messages, new, dead) == (1000, 999, 1)
    # Bisection: the whole batch, then two halves per level down to the one row.
    assert 1 < statements <= 1 + 2 * math.ceil(math.log2(1000)), statements


def dev_broker_coordinator(group: str, brokers: int) -> int:
    """The broker id the dev broker (librdkafka's mock cluster) makes coordinator of a group: CRC-32 of the
    group id modulo the broker count, in broker id order. Checked against the broker's answer below."""
    return zlib.crc32(group.encode()) % brokers + 1


def test_dlq_failing_holds_offsets_until_the_letter_is_delivered(pg):
    """The dead-letter topic's leader down: no offset passes the undelivered letter, a service keeps trying past
    --max_retries and delivers once the topic is back; SIGTERM meanwhile abandons the batch and exits 0 promptly."""
    from confluent_kafka.admin import AdminClient

    with DevBroker(brokers=3) as kafka:
        env = make_env(pg, kafka, partitions=6)
        consumers = []
        try:
            meta = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10).topics
            dlq_leader = meta[env.dlq_topic].partitions[0].leader
            partition = next(p for p, m in sorted(meta[env.topic].partitions.items()) if m.leader != dlq_leader)
            # A group whose coordinator is not the broker taken down: the consumer stays in its group.
            group = next(g for g in (f"dlq-{uuid.uuid4().hex[:8]}" for _ in range(100))
                         if dev_broker_coordinator(g, 3) != dlq_leader)

            def stored():
                rows = env.query("SELECT next_offset FROM strategy_consumer_offsets WHERE group_id = %s"
                                 " AND topic = %s AND kafka_partition = %s", group, env.topic, partition)
                return rows[0][0] if rows else None

            def consumer(name, *extra):
                # The partitions led by the broker that is down cannot be read to their end: batches flush on
                # their timeout.
                c = Consumer(flags_for_group(env, group, "--batch_timeout_seconds=1", *FAST_SESSION, *extra), name)
                consumers.append(c)
                return c

            good = distinct_strategies(13, "dlq", seed=7)
            env.produce(good[:5] + [b"\xff not json"] + good[5:10], partition=partition)  # the letter: offset 5

            # 1. Down, then back while the same service runs.
            kafka.command(f"down {dlq_leader}")
            port = free_port()
            c = consumer("dlq-service", "--max_retries=0", f"--http_port={port}", "--http_host=127.0.0.1")
            # More failures than --max_retries, and a service retries on (a drain job would give up here).
            c.wait_for(lambda c: any("deliver dead letters failed (attempt 1)" in m and "retrying in" in m
                                     for m in c.messages()), 90, "a failed delivery")
            time.sleep(1)
            # Still running, its partitions kept all along (its coordinator is up), not ready while it retries;
            # nothing committed, the letter's offset least of all.
            assert c.alive() and c.count("revoked ") == 0 and c.count("giving up") == 0, c.tail()
            status, body = http_get(port, "/ready")
            assert status == 503 and "stalled: retrying deliver dead letters" in body, (status, body)
            assert stored() is None and env.query("SELECT count(*) FROM strategies") == [(0,)]
            held = time.time() - c.started
            kafka.command(f"up {dlq_leader}")
            back = time.time()
            wait_until(lambda: stored() == 11, 60, "the offsets after the letter was delivered")
            delivered_after = time.time() - back
            wait_until(lambda: http_get(port, "/ready")[0] == 200, 30, "/ready once the letter was delivered")
            rc, _ = c.terminate(deadline=20)
            assert rc == 0, c.tail()
            assert {h for (h,) in env.query("SELECT strategy_hash FROM strategies")} == \
                {m["strategy_hash"] for m in good[:10]}

            # 2. Down again; SIGTERM while the next letter (offset 12) is undeliverable.
            env.produce([good[10], b"\xfe not json either", good[11], good[12]], partition=partition)
            kafka.command(f"down {dlq_leader}")
            c = consumer("dlq-sigterm")
            c.wait_for(lambda c: c.count("deliver dead letters failed (attempt 1)") >= 1, 90, "a failed delivery")
            rc, took = c.terminate(deadline=20)
            assert rc == 0, c.tail()
            assert c.count("abandoned") >= 1, c.tail()
            assert took < 8, f"SIGTERM took {took:.1f} s with an undeliverable letter"
            assert stored() == 11

            # 3. Back up: the next run delivers it and finishes.
            kafka.command(f"up {dlq_leader}")
            c = consumer("dlq-drain", "--idle_timeout_seconds=1")
            assert c.wait(120) == 0, c.tail()
            assert stored() == 15
            assert {h for (h,) in env.query("SELECT strategy_hash FROM strategies")} == \
                {m["strategy_hash"] for m in good}
            letters = env.dead_letters(2)
            assert sorted((l["stage"], l["source_partition"], l["source_offset"]) for l, _ in letters) == \
                [("decode", partition, 5), ("decode", partition, 12)]
            print(f"dead-letter topic down {held:.1f} s, committed {delivered_after:.1f} s after it came back;"
                  f" SIGTERM with an undeliverable letter: exit 0 in {took:.2f} s")
        finally:
            for c in consumers:
                c.stop()
            env.close()


class CommitAnswerDropper:
    """A TCP proxy in front of PostgreSQL that, once, lets the COMMIT of a transaction that sent COPY data reach
    the server and then cuts the client off before the answer: the COMMIT happened, the client cannot know it."""

    def __init__(self, upstream_port: int):
        import socket

        self.upstream = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.port = self.listener.getsockname()[1]
        self.dropped = threading.Event()
        self._closing = False
        self._sockets: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket

        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, server]
            state = {"copied": False, "cut": False}
            threading.Thread(target=self._client_to_server, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client, state), daemon=True).start()

    @staticmethod
    def _read(sock, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _client_to_server(self, client, server, state):
        import struct

        try:
            while True:  # untyped messages first: SSLRequest / GSSENCRequest (answered, then again), Startup
                length = struct.unpack("!I", self._read(client, 4))[0]
                body = self._read(client, length - 4)
                server.sendall(struct.pack("!I", length) + body)
                if struct.unpack("!I", body[:4])[0] not in (80877103, 80877104):
                    break
            while True:
                kind = self._read(client, 1)
                length = struct.unpack("!I", self._read(client, 4))[0]
                body = self._read(client, length - 4)
                if kind == b"d":
                    state["copied"] = True
                if kind == b"Q" and body.rstrip(b"\0").strip().upper() == b"COMMIT" and state["copied"] \
                        and not self.dropped.is_set():
                    self.dropped.set()
                    state["cut"] = True  # the answer goes nowhere; the connection is closed once it comes
                if kind == b"Q" and body.rstrip(b"\0").strip().upper() == b"COMMIT":
                    state["copied"] = False
                server.sendall(kind + struct.pack("!I", length) + body)
        except OSError:
            pass
        except ConnectionError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass

    @staticmethod
    def _server_to_client(server, client, state):
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                if state["cut"]:
                    break  # the server answered the COMMIT: it happened; the client never hears of it
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.shutdown(2)
                    s.close()
                except OSError:
                    pass

    def close(self):
        self._closing = True
        self.listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


def test_a_commit_of_unknown_outcome_is_reported_as_such_and_counted_as_committed(env):
    """The connection breaks after the server received COMMIT and before the answer arrived (libpqxx's
    in_doubt_error). That is not another consumer fencing the batch: the next attempt reads the stored offsets,
    sees that the COMMIT happened, and counts the batch as committed (not as fenced, not twice)."""
    prepare(env)
    msgs = distinct_strategies(5, "doubt", seed=11)
    env.produce(msgs, partition=0)
    proxy = CommitAnswerDropper(env.pg.port)
    try:
        args = [a if not a.startswith("--postgres_port") else f"--postgres_port={proxy.port}" for a in env.flags()]
        assert f"--postgres_port={proxy.port}" in args
        result = subprocess.run(args + ["--idle_timeout_seconds=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-4000:]
        assert proxy.dropped.is_set()
        log = result.stderr
        assert "outcome of COMMIT unknown" in log, log[-4000:]
        assert "the stored offsets show it committed" in log, log[-4000:]
        assert "abandoned" not in log and "another consumer" not in log, log[-4000:]
        assert applied_counts(env) == {m["strategy_hash"]: 1 for m in msgs}
        assert env.stored_offsets() == {0: 5}
        assert_history_matches_offsets(env, {0: [m["strategy_hash"] for m in msgs]})
        last = next(json.loads(line) for line in reversed(log.strip().splitlines()) if '"exiting (' in line)
        assert last["message"].startswith("exiting (idle)")
        assert (last["stored_new"], last["batches"]) == (5, 1), last
    finally:
        proxy.close()
