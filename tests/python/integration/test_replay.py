"""Replaying dead letters (`strategy-consumer replay-dead-letters`, strategy_consumer.replay_dead_letters) with
the real broker and PostgreSQL: after a rule is fixed, what it refused is stored exactly as the main path stores
it, exactly once (a replay killed half way and started again stores nothing twice), a dry run stores nothing,
the filters select, and letters that can not be replayed are reported."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time

from strategy_consumer import replay_dead_letters
from strategy_consumer.services import produce
from strategy_consumer.strategy_inspector import StrategyInspector
from strategy_consumer.testing import create_test_strategies, to_protobuf

STRICT = """\
from strategy_consumer.rules import rule


@rule
def too_few_trades(s):
    trades = s.metric("total_trades")
    if trades is not None and trades < 30:
        return f"only {trades} trades"
"""

# The fixed rule: 10 trades are enough now.
RELAXED = STRICT.replace("trades < 30", "trades < 10")

SLOW_RELAXED = RELAXED.replace("from strategy_consumer.rules import rule",
                               "import time\nfrom strategy_consumer.rules import rule").replace(
    '    trades = s.metric("total_trades")', '    time.sleep(0.01)\n    trades = s.metric("total_trades")')


def strategies_with_trades(n: int, seed: int, few_every: int) -> tuple[list[dict], set[int]]:
    """n valid strategies; every `few_every`-th has 10 to 20 trades (refused by STRICT, stored by RELAXED)."""
    strategies = create_test_strategies(n, seed=seed)
    few = set()
    for i, s in enumerate(strategies):
        trades = 10 + i % 11 if i % few_every == 0 else 40 + i
        s["performance_metrics"] = dict(s["performance_metrics"], total_trades=trades)
        if i % few_every == 0:
            few.add(i)
    return strategies, few


def replay(env, *extra: str, timeout: float = 120, program: list[str] | None = None) -> dict:
    """Runs the command (the binary, or `program`) and returns the report it printed on stdout."""
    args = [*(program or env.program), "replay-dead-letters", *env.flags(*extra)[len(env.program):]]
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    return json.loads(result.stdout)


def hashes_of(env) -> set[str]:
    return {h for (h,) in env.query("SELECT strategy_hash FROM strategies")}


def replay_offsets(env, group: str) -> dict[int, int]:
    rows = env.query("SELECT kafka_partition, next_offset FROM strategy_consumer_offsets"
                     " WHERE group_id = %s AND topic = %s", group, env.dlq_topic)
    return dict(rows)


def letter(stage: str, original: str | bytes, *, rule: str = "format.json", partition: int = 0, offset: int = 0,
           timestamp: str = "2026-11-01T10:00:00.000000Z", **extra) -> dict:
    """A dead letter as the consumer writes it (shared/DESIGN.md), for the filters and the unusual letters."""
    value = {"error": f"{rule}: refused", "timestamp": timestamp, "stage": stage,
             "reasons": [{"rule": rule, "field": "", "value": "", "message": "refused"}],
             "source_topic": "strategies", "source_partition": partition, "source_offset": offset}
    if isinstance(original, bytes):
        value.update(original_message=base64.b64encode(original).decode(), original_message_encoding="base64")
    else:
        value["original_message"] = original
    value.update(extra)
    return value


def test_a_fixed_rule_stores_what_it_refused_once_a_dry_run_stores_nothing(env, tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text(STRICT)
    strategies, few = strategies_with_trades(60, seed=51, few_every=4)
    invalid = {"symbol": "BTC/USD", "strategy_type": "PIVOT", "parameters": {"period": 99}, "score": 1.0}
    env.produce(strategies + [invalid])
    env.drain(f"--rules={rules}")
    inspector = StrategyInspector()
    refused = {inspector.inspect(strategies[i])["strategy_hash"] for i in few}
    invalid_rule = inspector.inspect(invalid)["reasons"][0]["rule"]
    stored_before = hashes_of(env)
    assert not refused & stored_before and len(stored_before) == 60 - len(few)
    assert len(env.dead_letters(len(few) + 1)) == len(few) + 1

    rules.write_text(RELAXED)
    dry = replay(env, f"--rules={rules}", "--dry_run")
    assert hashes_of(env) == stored_before, "a dry run stores nothing"
    assert replay_offsets(env, env.group + "-replay") == {}, "nor any offset"
    assert dry["dry_run"] is True
    assert (dry["values_read"], dry["replayed"], dry["passed"], dry["still_failing"]) == (
        len(few) + 1, len(few) + 1, len(few), 1)
    assert dry["rows"]["inserted"] == len(few), "what the write would have inserted (rolled back)"
    assert dry["stages"]["rule:too_few_trades"]["passed"] == len(few)
    assert dry["stages"]["validate"]["passed"] == 0
    assert dry["stages"]["validate"]["still_failing"] == {"validate": {invalid_rule: 1}}

    report = replay(env, f"--rules={rules}")
    assert report["dry_run"] is False
    assert (report["replayed"], report["passed"], report["still_failing"]) == (len(few) + 1, len(few), 1)
    assert report["rows"] == {"inserted": len(few), "updated": 0, "outdated": 0, "duplicate_in_batch": 0}
    assert hashes_of(env) == stored_before | refused
    # Stored exactly as the main path stores it.
    for i in few:
        (trades, score) = env.query("SELECT (performance_metrics->>'total_trades')::int, current_score FROM strategies"
                                    " WHERE strategy_hash = %s", inspector.inspect(strategies[i])["strategy_hash"])[0]
        assert (trades, score) == (strategies[i]["performance_metrics"]["total_trades"], strategies[i]["current_score"])
    assert replay_offsets(env, env.group + "-replay") == {0: len(few) + 1}
    # The failing one was not dead-lettered again.
    assert len(env.dead_letters(len(few) + 1)) == len(few) + 1

    # Again, from `python -m strategy_consumer` (the same Service): nothing new to read, nothing stored.
    again = replay(env, f"--rules={rules}", program=[sys.executable, "-m", "strategy_consumer"])
    assert (again["values_read"], again["replayed"], again["rows"]["inserted"], again["rows"]["updated"]) == (0, 0, 0, 0)


def test_a_replay_killed_half_way_and_started_again_stores_nothing_twice(env, tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text(STRICT)
    strategies, few = strategies_with_trades(400, seed=52, few_every=1)  # every one refused by STRICT
    env.produce(strategies)
    env.drain(f"--rules={rules}")
    assert len(env.dead_letters(400, timeout=30)) == 400

    rules.write_text(SLOW_RELAXED)  # 10 ms a strategy: the replay takes seconds
    group = env.group + "-replay"
    process = subprocess.Popen([env.program[0], "replay-dead-letters",
                                *env.flags(f"--rules={rules}", "--batch_size=20", "--writer_connections=1")[1:]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and replay_offsets(env, group).get(0, 0) < 100:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    committed = replay_offsets(env, group)[0]
    assert 100 <= committed < 400, f"killed half way: {committed}"
    assert env.query("SELECT count(*) FROM strategies")[0][0] == committed, "rows and offsets commit together"

    report = replay(env, f"--rules={rules}")
    assert report["values_read"] == 400 - committed, "it resumed where the stored offset says"
    assert report["rows"] == {"inserted": 400 - committed, "updated": 0, "outdated": 0, "duplicate_in_batch": 0}, \
        "nothing of the first run was applied again"
    assert env.query("SELECT count(*) FROM strategies")[0][0] == 400
    assert replay_offsets(env, group) == {0: 400}


def test_filters_select_and_letters_that_can_not_be_replayed_are_reported(env, tmp_path):
    ok = create_test_strategies(6, seed=53)
    values = [
        letter("validate", json.dumps(ok[0]), rule="parameters.range", partition=1, offset=5),
        letter("validate", json.dumps(ok[1]), rule="parameters.range", partition=2, offset=5),
        letter("validate", json.dumps(ok[2]), rule="parameters.unknown", partition=1, offset=50),
        letter("rule:x", json.dumps(ok[3]), rule="rule:x", partition=1, offset=7),
        letter("decode", json.dumps(ok[4]), rule="format.json", partition=1, offset=8,
               timestamp="2026-10-01T00:00:00Z"),
        letter("validate", json.dumps(ok[5])[:40], rule="parameters.range", partition=1, offset=9,
               original_message_truncated=True, original_message_bytes=400),
        {"error": "x", "timestamp": "2026-11-01T10:00:00Z", "stage": "validate", "source_topic": "strategies",
         "source_partition": 1, "source_offset": 10, "original_message_bytes": 2000000,
         "original_message_omitted": True, "refused": "Broker: Message size too large"},
        "not a letter",
        letter("validate", to_protobuf(ok[1]), rule="parameters.unknown", partition=3, offset=1,
               message_format="protobuf"),
    ]
    produce(env.kafka.bootstrap, env.dlq_topic, values)
    inspector = StrategyInspector()

    # Partition 1, offsets 0..20, validate or any rule, since October 15th: the first letter and the rule's.
    report = replay(env, "--dry_run", "--source_partition=1", "--to_offset=20", "--stage=validate", "--stage=rule",
                    "--since=2026-10-15T00:00:00Z")
    assert (report["values_read"], report["unreadable"], report["filtered_out"]) == (9, 1, 4)
    assert (report["replayed"], report["passed"], report["not_replayable"]) == (2, 2, 2)
    assert report["stages"]["validate"]["not_replayable"] == {"truncated": 1, "omitted": 1}
    assert report["stages"]["rule:x"]["passed"] == 1 and "decode" not in report["stages"]

    # By rule id, from Python, stored for real.
    report = replay_dead_letters(
        rule="parameters.unknown", kafka_bootstrap_servers=env.kafka.bootstrap, kafka_topic=env.topic,
        kafka_group_id=env.group, dlq_topic=env.dlq_topic, postgres_host=env.pg.host, postgres_port=env.pg.port,
        postgres_database=env.database, postgres_username=env.pg.user)
    assert (report["replayed"], report["passed"], report["filtered_out"]) == (2, 2, 6)
    # The protobuf original came back from its base64 bytes.
    assert hashes_of(env) == {inspector.inspect(ok[2])["strategy_hash"], inspector.inspect(to_protobuf(ok[1]))["strategy_hash"]}


def test_a_replayed_discovery_older_than_the_stored_one_is_not_applied(env, tmp_path):
    rules = tmp_path / "rules.py"
    rules.write_text(STRICT)
    [old] = create_test_strategies(1, seed=54)
    old["performance_metrics"] = dict(old["performance_metrics"], total_trades=12)
    old["current_score"] = 0.11
    env.produce([old])
    env.drain(f"--rules={rules}")  # refused: dead-lettered with its Kafka timestamp
    time.sleep(0.05)
    newer = dict(old, current_score=0.99, performance_metrics=dict(old["performance_metrics"], total_trades=300))
    env.produce([newer])
    env.drain(f"--rules={rules}")
    assert env.query("SELECT current_score FROM strategies")[0][0] == 0.99

    rules.write_text(RELAXED)
    report = replay(env, f"--rules={rules}")
    assert report["passed"] == 1 and report["rows"]["outdated"] == 1
    assert env.query("SELECT current_score FROM strategies")[0][0] == 0.99, "the newer discovery stays"


def test_replay_help_and_its_flags_only_with_the_command(env):
    for program in ([env.program[0]], [sys.executable, "-m", "strategy_consumer"]):
        result = subprocess.run([*program, "replay-dead-letters", "--help"], capture_output=True, text=True)
        assert result.returncode == 0
        assert result.stdout.startswith("strategy-consumer replay-dead-letters: reads the dead-letter topic")
        for flag in ("--dry_run", "--stage", "--rule", "--source_partition", "--from_offset", "--to_offset",
                     "--since", "--until", "--replay_group_id", "--kafka_bootstrap_servers"):
            assert flag in result.stdout
    assert "replay-dead-letters" in subprocess.run([env.program[0], "--help"], capture_output=True, text=True).stdout
    result = subprocess.run([env.program[0], "--dry_run"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown flag(s): --dry_run" in result.stderr
    result = subprocess.run([env.program[0], "replay-dead-letters", "--since=yesterday"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "--since" in result.stderr
