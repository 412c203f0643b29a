"""Analyst rules (strategy_consumer.rules) end to end: the binary's embedded interpreter, Consumer and
StrategyInspector on the host interpreter, hot reload, failing rules, and the GIL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from strategy_consumer import ConfigError, Consumer
from strategy_consumer.strategy_inspector import StrategyInspector
from strategy_consumer.testing import create_test_strategies, free_port

RULES = """\
from strategy_consumer.rules import rule


@rule(description="too few trades for the score to mean anything")
def too_few_trades(s):
    trades = s.metric("total_trades")
    if trades is not None and trades < 30:
        return f"only {trades} trades"


@rule(severity="warn")
def high_sharpe(s):
    if s.metric("sharpe_ratio", 0) > 4:
        return f"a Sharpe ratio of {s.metric('sharpe_ratio')} is hard to believe"
"""


def write_atomically(path: Path, text: str) -> None:
    """A rules file replaced whole (as editors and deployments do): the engine never reads half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def marked_strategies(n: int, seed: int) -> tuple[list[dict], set[int], set[int]]:
    """n valid strategies; every 5th has too few trades (refused), every 7th a high Sharpe ratio (warned)."""
    strategies = create_test_strategies(n, seed=seed)
    refused, warned = set(), set()
    for i, s in enumerate(strategies):
        metrics = dict(s["performance_metrics"])
        if i % 5 == 0:
            metrics["total_trades"] = 10 + i % 7
            refused.add(i)
        else:
            metrics["total_trades"] = max(metrics["total_trades"], 30)
        if i % 7 == 0:
            metrics["sharpe_ratio"] = 5.5
            warned.add(i)
        else:
            metrics["sharpe_ratio"] = min(metrics["sharpe_ratio"], 3.0)
        s["performance_metrics"] = metrics
    return strategies, refused, warned


def consumer_flags(env) -> dict:
    return dict(kafka_bootstrap_servers=env.kafka.bootstrap, kafka_topic=env.topic, kafka_group_id=env.group,
                dlq_topic=env.dlq_topic, postgres_host=env.pg.host, postgres_port=env.pg.port,
                postgres_database=env.database, postgres_username=env.pg.user,
                kafka_property={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})


def stored_count(env) -> int:
    """Rows in `strategies`; -1 before the consumer has created the table."""
    import psycopg2

    try:
        return env.query("SELECT count(*) FROM strategies")[0][0]
    except psycopg2.errors.UndefinedTable:
        return -1


def stored_hashes(env) -> set[str]:
    return {h for (h,) in env.query("SELECT strategy_hash FROM strategies")}


class StderrLines:
    """Collects a running process's stderr lines on a thread, so a test can wait for one."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)

    def count(self, text: str) -> int:
        with self._lock:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, times: int = 1, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(text) >= times:
                return
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} (x{times}) in stderr:\n" + "".join(self.lines[-40:]))

    def text(self) -> str:
        with self._lock:
            return "".join(self.lines)


def wait_until(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---- the binary, embedded interpreter ----

def test_binary_dead_letters_what_the_rules_refuse_and_stores_the_rest(env, tmp_path):
    rules_file = tmp_path / "analyst_rules.py"
    rules_file.write_text(RULES)
    strategies, refused, warned = marked_strategies(60, seed=21)
    inspector = StrategyInspector(rules=[str(rules_file)])
    hashes = [inspector.inspect(s)["strategy_hash"] for s in strategies]
    invalid = {"symbol": "BTC/USD", "strategy_type": "PIVOT", "parameters": {"period": 99}, "score": 1.0}
    env.produce(strategies + [invalid])

    result = env.drain(f"--rules={rules_file}")

    assert stored_hashes(env) == {h for i, h in enumerate(hashes) if i not in refused}
    letters = env.dead_letters(len(refused) + 1)
    assert len(letters) == len(refused) + 1
    by_stage: dict[str, list] = {}
    for letter, headers in letters:
        assert headers["dlq.stage"] == letter["stage"]
        by_stage.setdefault(letter["stage"], []).append((letter, headers))
    assert sorted(by_stage) == ["rule:too_few_trades", "validate"]  # the rules never see an invalid message
    rule_letters = by_stage["rule:too_few_trades"]
    assert {json.loads(letter["original_message"])["performance_metrics"]["total_trades"]
            for letter, _ in rule_letters} == {strategies[i]["performance_metrics"]["total_trades"] for i in refused}
    for letter, headers in rule_letters:
        trades = json.loads(letter["original_message"])["performance_metrics"]["total_trades"]
        assert letter["reasons"] == [{"rule": "rule:too_few_trades", "field": "", "value": "",
                                      "message": f"only {trades} trades"}]
        assert letter["error"] == f"rule:too_few_trades: only {trades} trades"
        assert headers["dlq.error"] == letter["error"]
        assert letter["source_topic"] == env.topic
    # Warnings are logged, and the warned strategies stored.
    assert "rules loaded: 2 rule(s)" in result.stderr
    warned_stored = [hashes[i] for i in warned if i not in refused]
    assert warned_stored and set(warned_stored) <= stored_hashes(env)
    for h in warned_stored:
        assert f"rule high_sharpe warns about strategy {h}" in result.stderr
    assert "a Sharpe ratio of 5.5 is hard to believe" in result.stderr


def test_each_message_gets_its_own_verdict_before_duplicates_collapse(env, tmp_path):
    """A re-discovery the rules refuse does not take the earlier, accepted version of the strategy with it, in
    whatever batch the two land."""
    rules_file = tmp_path / "analyst_rules.py"
    rules_file.write_text(RULES)
    first, other = create_test_strategies(2, seed=26)
    first["performance_metrics"] = dict(first["performance_metrics"], total_trades=100)
    again = dict(first, performance_metrics=dict(first["performance_metrics"], total_trades=10), current_score=9.0)
    env.produce([first, other, again], partition=0)

    env.drain(f"--rules={rules_file}")

    rows = env.query("SELECT current_score, performance_metrics->>'total_trades' FROM strategies"
                     " WHERE strategy_hash = %s", StrategyInspector().inspect(first)["strategy_hash"])
    assert rows == [(first["current_score"], "100")]
    assert env.query("SELECT count(*) FROM strategies") == [(2,)]
    letters = env.dead_letters(1)
    assert [(json.loads(letter["original_message"])["current_score"], letter["stage"]) for letter, _ in letters] == [
        (9.0, "rule:too_few_trades")]


def test_a_raising_rule_refuses_with_the_exception_and_the_process_goes_on(env, tmp_path):
    rules_file = tmp_path / "fragile.py"
    rules_file.write_text(
        "from strategy_consumer.rules import rule\n"
        "\n"
        "@rule\n"
        "def fragile(s):\n"
        "    return s.metric('total_return') / s.metric('total_trades') < 1\n")
    strategies = create_test_strategies(30, seed=22)
    broken = {3, 11, 17}
    for i in broken:
        strategies[i]["performance_metrics"] = dict(strategies[i]["performance_metrics"], total_trades=0)
    env.produce(strategies)

    result = env.drain(f"--rules={rules_file}")

    assert env.query("SELECT count(*) FROM strategies") == [(27,)]
    letters = env.dead_letters(3)
    assert len(letters) == 3
    for letter, headers in letters:
        assert letter["stage"] == "rule:fragile" and headers["dlq.stage"] == "rule:fragile"
        assert letter["reasons"][0]["message"] == \
            "ZeroDivisionError: float division by zero (at fragile.py:5 in fragile)"
    assert "rule fragile failed on" in result.stderr
    assert "exiting (idle)" in result.stderr


@pytest.mark.parametrize("source, expected", [
    ("syntax", "{path}:4: SyntaxError: expected ':'"),
    ("module", "no_such_rules_module_x: cannot import: ModuleNotFoundError: No module named 'no_such_rules_module_x'"),
    ("missing", "{missing}: no such file"),
])
def test_rules_that_fail_to_load_at_start_exit_2_with_a_clear_message(env, tmp_path, source, expected):
    path = tmp_path / "broken_rules.py"
    path.write_text("from strategy_consumer.rules import rule\n\n@rule\ndef broken(s)\n    return None\n")
    missing = tmp_path / "missing.py"
    arg = {"syntax": str(path), "module": "no_such_rules_module_x", "missing": str(missing)}[source]
    r = subprocess.run(env.flags(f"--rules={arg}", "--idle_timeout_seconds=1"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "rules: " + expected.format(path=path, missing=missing) in r.stderr
    # Nothing was consumed.
    assert env.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'strategies'") == [(0,)]


def test_hot_reload_on_change_and_on_sighup_keeps_the_old_rules_when_the_new_ones_are_broken(env, tmp_path):
    rules_file = tmp_path / "limits.py"

    def version(tag: str, limit: float) -> str:
        return ("from strategy_consumer.rules import rule\n\n@rule\ndef score_limit(s):\n"
                f"    return s.score <= {limit} or '{tag}: score above {limit}'\n")

    def batch(seed: int, scores: list[float]) -> list[dict]:
        out = create_test_strategies(len(scores), seed=seed)
        for s, score in zip(out, scores):
            s["current_score"] = score
        return out

    def letters_by_tag(n):
        return sorted(letter["reasons"][0]["message"].split(":")[0] for letter, _ in env.dead_letters(n))

    write_atomically(rules_file, version("v1", 1.0))
    port = free_port()
    process = env.start(f"--rules={rules_file}", f"--http_port={port}", "--http_host=127.0.0.1")
    stderr = StderrLines(process)
    try:
        env.produce(batch(31, [0.5, 1.5, 2.5, 3.5]))  # v1 refuses 3
        wait_until(lambda: stored_count(env) == 1, what="batch 1")

        write_atomically(rules_file, version("v2", 2.0))
        stderr.wait_for("rules reloaded (a rules file changed): 1 rule(s): score_limit")
        env.produce(batch(32, [0.5, 1.5, 2.5, 3.5]))  # v2 refuses 2
        wait_until(lambda: stored_count(env) == 3, what="batch 2")

        broken = version("v3", 0.1).replace("def score_limit(s):", "def score_limit(s)") + "#"
        write_atomically(rules_file, broken)
        stderr.wait_for("rules reload failed (a rules file changed), keeping the previous 1 rule(s): "
                        f"{rules_file}:4: SyntaxError")
        env.produce(batch(33, [0.5, 1.5, 2.5, 3.5]))  # still v2: refuses 2
        wait_until(lambda: stored_count(env) == 5, what="batch 3")

        # SIGHUP alone: a new version written in place with the same size and mtime, which the file check
        # cannot see.
        v4 = version("v4", 0.1)
        assert len(v4) == len(broken)
        before = rules_file.stat()
        with open(rules_file, "r+") as f:
            f.write(v4)
        os.utime(rules_file, ns=(before.st_atime_ns, before.st_mtime_ns))
        time.sleep(2.5)  # two file checks pass without a reload
        assert stderr.count("rules reloaded") == 1
        process.send_signal(signal.SIGHUP)
        stderr.wait_for("rules reloaded (a reload was requested): 1 rule(s): score_limit")
        env.produce(batch(34, [0.5, 1.5, 2.5, 3.5]))  # v4 refuses all 4
        wait_until(lambda: sum(env.stored_offsets().values()) == 16, what="batch 4 committed")
        assert env.query("SELECT count(*) FROM strategies") == [(5,)]
        assert letters_by_tag(11) == ["v1"] * 3 + ["v2"] * 4 + ["v4"] * 4
        # The per-rule counters reach /metrics (kept across the reloads: one rule name throughout).
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        for line in ['strategy_consumer_rule_evaluations_total{rule="score_limit"} 16',
                     'strategy_consumer_rule_rejections_total{rule="score_limit"} 11',
                     'strategy_consumer_rule_errors_total{rule="score_limit"} 0',
                     'strategy_consumer_dead_letters_total{stage="rule:score_limit"} 11']:
            assert line in metrics.splitlines(), (line, metrics)
        assert re.search(r'^strategy_consumer_rule_seconds_total\{rule="score_limit"\} [0-9.e-]+$', metrics, re.M)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        stderr._thread.join(10)
    assert process.returncode == 0, stderr.text()[-3000:]


def test_rules_reload_between_batches_of_a_steady_backlog(env, tmp_path):
    """Issue 15.7: a reload waited until every open batch was empty, which a backlog never gives (the writers are
    always busy, the next batches always filling). It now happens between two batches of a lane."""
    rules_file = tmp_path / "gate.py"

    def version(tag: str, refuse: bool) -> str:
        return ("from strategy_consumer.rules import rule\n\n@rule\ndef gate(s):\n"
                f"    return {'False' if refuse else 'True'} or '{tag}'\n")

    write_atomically(rules_file, version("v1", refuse=False))
    env.drain()  # the schema, then writes slowed down (5 ms a row: some 400 rows/s for two writers)
    with env.conn.cursor() as cur:
        cur.execute("CREATE FUNCTION slow_row() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END"
                    " $$ LANGUAGE plpgsql")
        cur.execute("CREATE TRIGGER slow_row BEFORE INSERT ON strategies FOR EACH ROW EXECUTE FUNCTION slow_row()")
    strategies = create_test_strategies(6000, seed=41)
    done = threading.Event()

    def produce_steadily():  # 800/s, twice what the writers store: the backlog grows, no lane ever runs dry
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": env.kafka.bootstrap, "linger.ms": 5})
        for i, s in enumerate(strategies):
            if done.is_set():
                break
            producer.produce(env.topic, json.dumps(s).encode(), partition=i % env.partitions)
            producer.poll(0)
            if i % 40 == 39:
                time.sleep(0.05)
        producer.flush(30)

    producer = threading.Thread(target=produce_steadily, daemon=True)
    process = env.start(f"--rules={rules_file}", "--batch_size=50")
    stderr = StderrLines(process)
    producer.start()
    try:
        wait_until(lambda: stored_count(env) >= 200, what="the first batches")
        write_atomically(rules_file, version("v2", refuse=True))
        changed = time.time()
        stderr.wait_for("rules reloaded (a rules file changed)", timeout=30)
        reload_took = time.time() - changed
        assert producer.is_alive(), "the backlog was still there when the rules reloaded"
        # From then on every batch goes through v2: nothing more is stored.
        stored_then = stored_count(env)
        time.sleep(3)
        assert stored_count(env) <= stored_then + 2 * 50 * 2, "at most the batches already handed off"
    finally:
        done.set()
        producer.join(60)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        stderr._thread.join(10)
    assert process.returncode == 0, stderr.text()[-3000:]
    assert reload_took < 10, f"the reload waited {reload_took:.1f} s"


# ---- Consumer and StrategyInspector: the host interpreter ----

def test_consumer_and_inspector_apply_the_same_rules_as_the_binary(env, tmp_path):
    rules_file = tmp_path / "analyst_rules.py"
    rules_file.write_text(RULES)
    strategies, refused, warned = marked_strategies(45, seed=23)
    inspector = StrategyInspector(rules=str(rules_file))
    assert inspector.rules == ["too_few_trades", "high_sharpe"]
    verdicts = [inspector.inspect(s) for s in strategies]
    assert {i for i, v in enumerate(verdicts) if v["stage"] == "rule:too_few_trades"} == refused
    assert {i for i, v in enumerate(verdicts) if v["rule_warnings"]} == warned
    assert not inspector.validate_strategy(strategies[0]) and inspector.validate_strategy(strategies[1])
    assert inspector.validate(strategies[0])[0]["rule"] == "rule:too_few_trades"
    assert StrategyInspector().validate_strategy(strategies[0])  # without rules: only the catalog
    env.produce(strategies)

    consumer = Consumer(rules=[rules_file], **consumer_flags(env))
    assert consumer.run_until_idle(1) == "idle"

    assert stored_hashes(env) == {v["strategy_hash"] for v in verdicts if v["stage"] == ""}
    letters = env.dead_letters(len(refused))
    assert sorted(json.loads(letter["original_message"])["performance_metrics"]["total_trades"]
                  for letter, _ in letters) == sorted(strategies[i]["performance_metrics"]["total_trades"]
                                                      for i in refused)
    assert {letter["stage"] for letter, _ in letters} == {"rule:too_few_trades"}
    stats = {r["name"]: r for r in consumer.rule_stats["rules"]}
    assert (stats["too_few_trades"]["evaluated"], stats["too_few_trades"]["rejected"]) == (45, len(refused))
    assert (stats["high_sharpe"]["evaluated"], stats["high_sharpe"]["warned"]) == (45, len(warned))
    assert stats["high_sharpe"]["severity"] == "warn" and stats["too_few_trades"]["errors"] == 0
    assert consumer.counters["dead_lettered"] == len(refused)
    # The inspector's counters: its own engine, one evaluation per strategy.
    counted = {r["name"]: r for r in inspector.rule_stats()["rules"]}
    assert counted["too_few_trades"]["rejected"] >= len(refused)


def test_python_dash_m_takes_rules_as_the_binary_does(env, tmp_path):
    rules_file = tmp_path / "analyst_rules.py"
    rules_file.write_text(RULES)
    strategies, refused, _ = marked_strategies(20, seed=27)
    env.produce(strategies)
    package_root = str(Path(__file__).resolve().parents[3] / "python")
    r = subprocess.run([sys.executable, "-m", "strategy_consumer", *env.flags()[1:], f"--rules={rules_file}",
                        "--idle_timeout_seconds=1"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": package_root})
    assert r.returncode == 0, r.stderr[-2000:]
    assert env.query("SELECT count(*) FROM strategies") == [(20 - len(refused),)]
    assert {letter["stage"] for letter, _ in env.dead_letters(len(refused))} == {"rule:too_few_trades"}


def test_a_warn_only_rule_logs_counts_and_stores(env, tmp_path, capfd):
    from strategy_consumer.rules import rule

    @rule(severity="warn", description="a round score looks hand-made")
    def round_score(s):
        return s.score != round(s.score, 1)

    strategies = create_test_strategies(25, seed=24)
    for i, s in enumerate(strategies):
        s["current_score"] = 1.5 if i < 15 else 1.234
    env.produce(strategies)
    consumer = Consumer(rules=[round_score], **consumer_flags(env))
    assert consumer.run_until_idle(1) == "idle"

    assert env.query("SELECT count(*) FROM strategies") == [(25,)]
    assert env.dead_letters(0) == []
    stats = consumer.rule_stats["rules"][0]
    assert (stats["name"], stats["evaluated"], stats["warned"], stats["rejected"]) == ("round_score", 25, 15, 0)
    err = capfd.readouterr().err
    # At most 10 lines per rule and batch, then a sum.
    logged = err.count("rule round_score warns about strategy")
    summed = sum(int(n) for n in re.findall(r"rule round_score: (\d+) more warning\(s\) in this batch", err))
    assert logged + summed == 15 and 10 <= logged
    assert "a round score looks hand-made" in err


def test_rules_that_fail_to_load_raise_config_error_in_python(env, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from strategy_consumer.rules import rule\n\nimport does_not_exist_anywhere\n")
    for make in (lambda: Consumer(rules=[path], **consumer_flags(env)), lambda: StrategyInspector(rules=path)):
        with pytest.raises(ConfigError, match=re.escape(f"rules: {path}:3: ModuleNotFoundError")):
            make()


def test_a_python_thread_keeps_running_while_consumer_run_works_with_rules(env, tmp_path):
    rules_file = tmp_path / "analyst_rules.py"
    rules_file.write_text(RULES)
    strategies, refused, _ = marked_strategies(3000, seed=25)
    env.produce(strategies)
    consumer = Consumer(rules=[rules_file], batch_size=500, **consumer_flags(env))
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("reason", consumer.run()))
    ticks = []
    started = time.monotonic()
    worker.start()
    deadline = time.time() + 120
    while time.time() < deadline and consumer.counters["messages"] < 3000:
        ticks.append(time.monotonic())
        time.sleep(0.005)
    while time.time() < deadline and consumer.counters["batches"] == 0:
        time.sleep(0.05)
    consumer.stop()
    worker.join(60)
    assert outcome["reason"] == "stopped"
    assert env.query("SELECT count(*) FROM strategies") == [(3000 - len(refused),)]
    stats = {r["name"]: r for r in consumer.rule_stats["rules"]}
    assert stats["too_few_trades"]["evaluated"] == 3000 and stats["too_few_trades"]["rejected"] == len(refused)
    # This thread ran all along: the pipeline holds the GIL only while the rules run, once per batch.
    gaps = [b - a for a, b in zip([started] + ticks, ticks)]
    assert len(ticks) > 20 and max(gaps) < 2.0, (len(ticks), max(gaps))
