"""The core pipeline through the real binary: dev broker -> strategy-consumer -> PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import time
from datetime import datetime

import pytest

from strategy_consumer import samples


def canonical_hash(symbol, strategy_type, parameters):
    """Independent re-statement of the documented canonical form (README: strategy_hash)."""
    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        return v
    doc = {"parameters": norm(parameters), "strategy_type": strategy_type, "symbol": symbol}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


SMA_RSI = {"movingAveragePeriod": 20, "rsiPeriod": 14, "overboughtThreshold": 70.0, "oversoldThreshold": 30.0}


def unique_strategies(n, seed):
    """n sample strategies with n distinct hashes (the sampler can draw the same one twice)."""
    seen, out = set(), []
    for m in samples.sample_stream(2 * n, seed=seed, rediscover_ratio=0):
        h = canonical_hash(m["symbol"], m["strategy_type"], m["parameters"])
        if h not in seen:
            seen.add(h)
            out.append(m)
        if len(out) == n:
            return out
    raise AssertionError("sampler too repetitive")


def test_messages_over_partitions_land_with_exact_values(env):
    msgs = []
    for i in range(40):
        msgs.append({
            "symbol": f"SYM{i % 5}/USD", "strategy_type": "MACD_CROSSOVER",
            "parameters": {"shortEmaPeriod": 8 + i % 9, "longEmaPeriod": 20 + i % 13, "signalPeriod": 5 + i % 8},
            "score": 0.5 + i / 100,
            "performance_metrics": {"total_return": 0.15, "sharpe_ratio": 1.2, "max_drawdown": -0.05,
                                    "win_rate": 0.65, "profit_factor": 1.8, "total_trades": 150 + i,
                                    "avg_trade_duration": 2.5},
            "discovery_symbol": f"SYM{i % 5}/USD",
            "discovery_start_time": "2024-01-15T10:30:00+02:00",
            "discovery_end_time": "2024-02-15T10:30:00.250Z",
        })
    for p in range(env.partitions):
        env.produce(msgs[p::env.partitions], partition=p)
    env.drain()

    rows = env.query("SELECT symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol,"
                     " discovery_start_time, discovery_end_time, performance_metrics, is_active,"
                     " first_discovered_at = created_at, strategy_id FROM strategies")
    assert len(rows) == 40
    by_hash = {r[4]: r for r in rows}
    for m in msgs:
        h = canonical_hash(m["symbol"], m["strategy_type"], m["parameters"])
        r = by_hash[h]
        assert r[0] == m["symbol"] and r[1] == m["strategy_type"]
        assert r[2] == m["parameters"]
        assert r[3] == m["score"]
        assert r[5] == m["discovery_symbol"]
        assert r[6] == datetime(2024, 1, 15, 8, 30, 0)              # +02:00 stored as UTC
        assert r[7] == datetime(2024, 2, 15, 10, 30, 0, 250000)
        assert r[8] == m["performance_metrics"]
        assert r[9] is True and r[10] is True and r[11] is not None
    assert env.stored_offsets() == env.end_offsets() == {p: 10 for p in range(4)}


def test_rediscovery_updates_score_but_keeps_first_discovery(env):
    base = {"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI,
            "current_score": 0.4, "performance_metrics": {"sharpe_ratio": 0.9, "win_rate": 0.5}}
    env.produce([base], partition=0)
    env.drain()
    (first, created, evaluated, updated, score) = env.query(
        "SELECT first_discovered_at, created_at, last_evaluated_at, updated_at, current_score FROM strategies")[0]
    assert score == 0.4
    time.sleep(0.05)
    again = dict(base, current_score=0.9, performance_metrics={"sharpe_ratio": 2.0, "win_rate": 0.6},
                 discovery_end_time="2024-03-01T00:00:00Z")
    env.produce([again], partition=1)
    env.drain()
    rows = env.query("SELECT first_discovered_at, created_at, last_evaluated_at, updated_at, current_score,"
                     " performance_metrics, discovery_end_time FROM strategies")
    assert len(rows) == 1
    f2, c2, e2, u2, s2, metrics, end = rows[0]
    assert (f2, c2) == (first, created)
    assert e2 > evaluated and u2 > updated
    assert s2 == 0.9 and metrics == {"sharpe_ratio": 2.0, "win_rate": 0.6}
    assert end == datetime(2024, 3, 1)


def test_duplicates_in_one_batch_collapse_to_the_last(env):
    base = {"symbol": "BTC/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI}
    env.produce([dict(base, score=s) for s in (0.1, 0.2, 0.3)], partition=0)
    result = env.drain()
    assert env.query("SELECT current_score FROM strategies") == [(0.3,)]
    assert "2 duplicate(s) in batch" in result.stderr


def test_duplicates_in_one_batch_fold_field_by_field_in_offset_order(env):
    """Issue 15.3: the row is what applying the messages one by one gives, as if they had come in two batches."""
    base = {"symbol": "BTC/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI}
    metrics = {"sharpe_ratio": 1.4, "win_rate": 0.6}
    env.produce([dict(base, score=0.1, performance_metrics=metrics, discovery_start_time="2024-01-01T00:00:00Z"),
                 dict(base, score=0.2, discovery_end_time="2024-02-01T00:00:00Z"),
                 dict(base, score=0.3)], partition=0)
    result = env.drain()
    assert "1 new, 0 updated, 2 duplicate(s) in batch" in result.stderr, "one batch"
    assert env.query("SELECT current_score, performance_metrics, discovery_start_time, discovery_end_time"
                     " FROM strategies") == [(0.3, metrics, datetime(2024, 1, 1), datetime(2024, 2, 1))]


def test_a_refused_folded_row_dead_letters_every_message_folded_into_it(env):
    base = {"symbol": "BTC/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI}
    refused = canonical_hash(base["symbol"], base["strategy_type"], base["parameters"])
    env.drain()  # creates the schema
    with env.conn.cursor() as cur:
        cur.execute(f"ALTER TABLE strategies ADD CONSTRAINT not_this_one CHECK (strategy_hash <> '{refused}')")
    other = dict(base, symbol="ETH/USD", score=0.5)
    env.produce([dict(base, score=0.1), other, dict(base, score=0.2)], partition=0)
    result = env.drain()
    assert "1 new, 0 updated, 0 duplicate(s) in batch, 2 dead-lettered" in result.stderr
    letters = env.dead_letters(2)
    assert sorted((letter["source_offset"], letter["stage"], json.loads(letter["original_message"])["score"])
                  for letter, _ in letters) == [(0, "database", 0.1), (2, "database", 0.2)]
    assert env.query("SELECT symbol FROM strategies") == [("ETH/USD",)]


def test_large_valid_messages_flush_on_bytes(env):
    """Issue 15.2: a batch is written once it holds --max_batch_bytes, whatever --batch_size says; the raw
    payloads and decoded values count, so a backlog of large valid messages never piles up in one batch."""
    msgs = unique_strategies(20, seed=15)
    for m in msgs:
        m["backtest_log"] = "x" * 600_000  # extra fields are allowed: read, ignored, not stored
    for p in range(env.partitions):
        env.produce(msgs[p::env.partitions], partition=p)
    result = env.drain("--max_batch_bytes=1500000", "--max_buffered_bytes=4000000", "--log_format=text")
    sizes = [int(n) for n in re.findall(r"batch \d+: (\d+) message\(s\)", result.stderr)]
    assert sum(sizes) == 20, result.stderr[-3000:]
    assert max(sizes) <= 3, sizes  # 600 kB each: the third reaches 1.5 MB
    assert env.query("SELECT count(*) FROM strategies") == [(20,)]
    assert env.stored_offsets() == {p: 5 for p in range(env.partitions)}


def produce_at(env, items):
    """(message, partition, Kafka timestamp in ms) each, in order."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": env.kafka.bootstrap})
    for message, partition, ts in items:
        producer.produce(env.topic, json.dumps(message).encode(), partition=partition, timestamp=ts)
    assert producer.flush(30) == 0


def test_an_older_rediscovery_from_another_partition_does_not_overwrite_a_newer_one(env):
    """Issue 15.4: partitions commit independently, so a re-discovery can arrive after a newer one. It is applied
    only when its Kafka timestamp is not older than the stored one's; last_evaluated_at does not move either."""
    base = {"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI}
    now = int(time.time() * 1000)
    produce_at(env, [(dict(base, score=0.9, performance_metrics={"sharpe_ratio": 2.0}), 1, now)])
    env.drain()
    evaluated = env.query("SELECT last_evaluated_at FROM strategies")[0][0]
    produce_at(env, [(dict(base, score=0.1, performance_metrics={"sharpe_ratio": 0.1}), 0, now - 60_000)])
    result = env.drain()
    assert "1 outdated (not applied)" in result.stderr
    assert env.query("SELECT current_score, performance_metrics, last_evaluated_at FROM strategies") == [
        (0.9, {"sharpe_ratio": 2.0}, evaluated)]
    # A newer one still applies.
    produce_at(env, [(dict(base, score=0.5), 2, now + 1000)])
    env.drain()
    assert env.query("SELECT current_score, performance_metrics FROM strategies") == [(0.5, {"sharpe_ratio": 2.0})]


def test_a_replay_does_not_roll_rows_back(env):
    """A replay (a new group: no stored offsets and none committed in Kafka): the old messages are read again and
    must not bring back old values. (Deleting a group's offsets rows is no replay: a partition without a row
    starts where the group committed in Kafka.)"""
    base = {"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI}
    now = int(time.time() * 1000)
    produce_at(env, [(dict(base, score=0.1, discovery_end_time="2024-01-01T00:00:00Z"), 0, now - 5000),
                     (dict(base, score=0.2, discovery_end_time="2024-02-01T00:00:00Z"), 1, now)])
    env.drain()
    expected = [(0.2, datetime(2024, 2, 1))]
    assert env.query("SELECT current_score, discovery_end_time FROM strategies") == expected

    def drain_as(group: str) -> str:
        args = [a for a in env.flags("--idle_timeout_seconds=1") if not a.startswith("--kafka_group_id=")]
        result = subprocess.run(args + [f"--kafka_group_id={group}"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    drain_as(env.group + "-replay-all")  # everything again, both messages in one batch
    assert env.query("SELECT current_score, discovery_end_time FROM strategies") == expected
    # Only the old message again: a group whose partition 1 is stored at its end.
    env.query("INSERT INTO strategy_consumer_offsets (group_id, topic, kafka_partition, next_offset)"
              " VALUES (%s, %s, 1, 1)", env.group + "-replay-old", env.topic)
    assert "1 outdated (not applied)" in drain_as(env.group + "-replay-old")
    assert env.query("SELECT current_score, discovery_end_time FROM strategies") == expected
    assert env.stored_offsets() == {0: 1, 1: 1}
    assert dict(env.query("SELECT kafka_partition, next_offset FROM strategy_consumer_offsets WHERE group_id = %s",
                          env.group + "-replay-old")) == {0: 1, 1: 1}


def test_restart_applies_nothing_twice_and_offsets_equal_end(env):
    env.drain()  # creates the schema
    with env.conn.cursor() as cur:
        cur.execute("CREATE TABLE applied (strategy_hash text)")
        cur.execute("CREATE FUNCTION count_apply() RETURNS trigger AS $$ BEGIN"
                    " INSERT INTO applied VALUES (NEW.strategy_hash); RETURN NEW; END $$ LANGUAGE plpgsql")
        cur.execute("CREATE TRIGGER count_apply AFTER INSERT OR UPDATE ON strategies"
                    " FOR EACH ROW EXECUTE FUNCTION count_apply()")
    msgs = unique_strategies(3000, seed=11)
    env.produce(msgs[:1500])
    proc = env.start("--batch_size=100")
    deadline = time.time() + 60
    while time.time() < deadline and env.query("SELECT count(*) FROM applied")[0][0] < 300:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    mid = env.query("SELECT count(*) FROM applied")[0][0]
    assert 0 < mid <= 1500
    env.produce(msgs[1500:])
    env.drain("--batch_size=100")
    counts = env.query("SELECT count(*), count(DISTINCT strategy_hash), max(c) FROM"
                       " (SELECT strategy_hash, count(*) c FROM applied GROUP BY strategy_hash) s")
    hashes = {canonical_hash(m["symbol"], m["strategy_type"], m["parameters"]) for m in msgs}
    assert counts == [(3000, 3000, 1)] and len(hashes) == 3000
    assert env.stored_offsets() == env.end_offsets()
    assert sum(env.end_offsets().values()) == 3000


def test_text_is_stored_byte_for_byte(env):
    nasty = ["tab\there", "new\nline", "back\\slash", "quote'\"s", "\\N", "\\.", "car\rriage",
             "unicode ü € 漢字 🚀", "  spaces  ", "semi;colon--", "$$dollar$$"]
    # Free text lives in strategy_type (a VARCHAR column, any text once unknown types are allowed) and in
    # the parameters (JSONB keys and values).
    msgs = [{"symbol": f"TXT{i}", "strategy_type": s, "parameters": {"note": s, s: 1}, "score": 1.0}
            for i, s in enumerate(nasty)]
    env.produce(msgs, partition=0)
    env.drain("--allow_unknown_strategy_types")
    rows = env.query("SELECT strategy_type, parameters FROM strategies")
    assert len(rows) == len(nasty)
    got = dict(rows)
    for s in nasty:
        assert got[s] == {"note": s, s: 1}
    raw = env.query("SELECT convert_to(strategy_type, 'UTF8') FROM strategies WHERE strategy_type LIKE 'unicode%%'")
    assert bytes(raw[0][0]) == "unicode ü € 漢字 🚀".encode()


def test_undecodable_message_is_dead_lettered_and_neighbours_land(env):
    good = list(samples.sample_stream(10, seed=3, rediscover_ratio=0))
    values = good[:5] + [b"\xff\xfe not json"] + good[5:]
    env.produce(values, partition=2)
    env.drain()
    assert env.query("SELECT count(*) FROM strategies") == [(10,)]
    letters = env.dead_letters(1)
    assert len(letters) == 1
    letter, headers = letters[0]
    assert letter["source_topic"] == env.topic and letter["source_partition"] == 2
    assert letter["source_offset"] == 5 and letter["stage"] == "decode"
    assert letter["original_message_encoding"] == "base64"
    # Not `{` first, so tried as protobuf (--message_format=auto): neither JSON nor protobuf.
    assert "format.unrecognized" in letter["error"] and letter["reasons"][0]["rule"] == "format.unrecognized"
    assert letter["message_format"] == "protobuf"
    assert letter["timestamp"].endswith("Z")
    assert headers == {"dlq.source.topic": env.topic, "dlq.source.partition": "2", "dlq.source.offset": "5",
                       "dlq.stage": "decode", "dlq.error": letter["error"]}
    assert env.stored_offsets()[2] == 11


def test_quiet_topic_flushes_as_soon_as_caught_up(env):
    proc = env.start("--batch_timeout_seconds=30")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and env.query("SELECT to_regclass('strategy_consumer_offsets')") == [(None,)]:
            time.sleep(0.1)
        while time.time() < deadline and not env.query(
                "SELECT 1 FROM strategy_consumer_offsets WHERE group_id = %s", env.group):
            env.produce(list(samples.sample_stream(1, seed=int(time.time() * 1000) % 100000)), partition=0)
            time.sleep(0.5)  # until the consumer has joined and committed something
        sent = time.time()
        env.produce([{"symbol": "QUIET", "strategy_type": "SMA_RSI", "parameters": SMA_RSI, "score": 1}],
                    partition=1)
        while time.time() - sent < 10 and not env.query("SELECT 1 FROM strategies WHERE symbol = 'QUIET'"):
            time.sleep(0.01)
        elapsed = time.time() - sent
        assert env.query("SELECT 1 FROM strategies WHERE symbol = 'QUIET'"), "row did not arrive"
        assert elapsed < 5, f"took {elapsed:.2f} s with a 30 s batch timeout"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_writers_take_disjoint_partitions_and_overlapping_strategies_do_not_deadlock(env):
    """Two writer connections (the default): each batch holds the partitions of one writer (even or odd), both
    write, and the same strategies re-discovered on every partition (rows both writers upsert at once) are stored
    once each with their offsets exact, without a deadlock being retried."""
    base = unique_strategies(200, seed=21)
    for p in range(env.partitions):  # every partition carries all 200 strategies, with its own scores
        env.produce([{**m, ("current_score" if "current_score" in m else "score"): round(p + i / 1000, 3)}
                     for i, m in enumerate(base)] * 3, partition=p)
    result = env.drain("--batch_size=150", "--log_format=text")
    batches = [line for line in result.stderr.splitlines() if re.search(r"\bbatch \d+: \d+ message", line)]
    parities = []
    for line in batches:
        offsets = line.split("; offsets ", 1)[1].split(";", 1)[0].split()
        parities.append({int(o.split("[", 1)[1].split("]", 1)[0]) % 2 for o in offsets})
    assert parities and all(len(p) == 1 for p in parities), parities
    assert {next(iter(p)) for p in parities} == {0, 1}
    assert "deadlock" not in result.stderr
    assert env.query("SELECT count(*), count(DISTINCT strategy_hash) FROM strategies") == [(200, 200)]
    assert env.stored_offsets() == env.end_offsets() == {p: 600 for p in range(env.partitions)}
