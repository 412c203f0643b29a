"""The score history (README, "Score history") through the real binary and the Python client: one row per applied
message with that message's own values and source position, none for an outdated one, nothing with the flag off,
month partitions created and dropped by retention, and the analysis readers on known data. (That a retried,
fenced or killed consumer writes no history twice is checked with the rows, in test_faults.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from strategy_consumer import analysis
from strategy_consumer.postgres_client import PostgresClient

SMA_RSI = {"movingAveragePeriod": 20, "rsiPeriod": 14, "overboughtThreshold": 70.0, "oversoldThreshold": 30.0}
HISTORY = ("SELECT source_partition, source_offset, strategy_hash, score, performance_metrics, discovery_symbol,"
           " discovery_start_time, discovery_end_time, message_timestamp, source_topic FROM strategy_score_history"
           " ORDER BY source_partition, source_offset")


def produce_at(env, items):
    """(message, partition, Kafka timestamp in ms) each, in order; returns each one's (partition, offset)."""
    from confluent_kafka import Producer

    positions = {}
    producer = Producer({"bootstrap.servers": env.kafka.bootstrap, "enable.idempotence": True})

    def delivered(i):
        def on_delivery(err, msg):
            assert err is None, err
            positions[i] = (msg.partition(), msg.offset())
        return on_delivery

    for i, (message, partition, ts) in enumerate(items):
        producer.produce(env.topic, json.dumps(message).encode(), partition=partition, timestamp=ts,
                         on_delivery=delivered(i))
    assert producer.flush(30) == 0
    return [positions[i] for i in range(len(items))]


def utc(text: str) -> datetime:
    """A message's RFC 3339 time as the TIMESTAMP column gives it back (UTC, naive)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)


def month_partitions(env) -> set[str]:
    return {r[0] for r in env.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                    " WHERE i.inhparent = 'strategy_score_history'::regclass")}


def strategy(tag: str, score: float, **extra) -> dict:
    return {"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI, "strategy_hash": tag,
            "score": score, **extra}


def test_each_applied_message_is_one_history_row_with_its_own_values_and_position(env):
    now = int(time.time() * 1000)
    metrics = {"sharpe_ratio": 1.5, "win_rate": 0.6}
    window = {"discovery_start_time": "2026-01-01T00:00:00Z", "discovery_end_time": "2026-02-01T12:00:00+02:00"}
    # D is stored first, newer than the first of its two messages below.
    first = produce_at(env, [(strategy("D", 0.40), 3, now + 10_000), (strategy("B", 0.50), 1, now)])
    env.drain()
    items = [
        # A: three re-discoveries in one partition (folded when they share a batch), each with its own values,
        # then one older than the third: not applied.
        (strategy("A", 0.10, performance_metrics=metrics, **window), 0, now),
        (strategy("A", 0.20, discovery_symbol="ETH/USDT"), 0, now + 1000),
        (strategy("A", 0.30, performance_metrics={"sharpe_ratio": 3.0}), 0, now + 2000),
        (strategy("A", 0.99), 0, now + 500),
        # B: older than the stored one (another partition): outdated, no history.
        (strategy("B", 0.05), 2, now - 60_000),
        # D: the first is older than the stored row, the second newer: only the second is applied.
        (strategy("D", 0.41), 3, now + 5000),
        (strategy("D", 0.42), 3, now + 20_000),
        # C: new, nothing optional.
        ({"symbol": "BTC/USD", "strategy_type": "SMA_RSI", "parameters": SMA_RSI, "strategy_hash": "C",
          "current_score": 0.7}, 1, now),
    ]
    positions = produce_at(env, items)
    result = env.drain()
    assert "outdated" in result.stderr
    applied = [0, 1, 2, 6, 7]
    expected = [(*first[0], "D", 0.40), (*first[1], "B", 0.50)] + [
        (*positions[i], items[i][0]["strategy_hash"], items[i][0].get("score", items[i][0].get("current_score")))
        for i in applied]
    rows = env.query(HISTORY)
    assert [r[:4] for r in rows] == sorted(expected)
    by_position = {(r[0], r[1]): r for r in rows}
    ts = {positions[i]: items[i][2] for i in range(len(items))}
    for i in applied:
        message, row = items[i][0], by_position[positions[i]]
        assert row[4] == message.get("performance_metrics")
        assert row[5] == message.get("discovery_symbol")
        assert row[6] == (utc(message["discovery_start_time"]) if "discovery_start_time" in message else None)
        assert row[7] == (utc(message["discovery_end_time"]) if "discovery_end_time" in message else None)
        assert row[8] == datetime.fromtimestamp(ts[positions[i]] / 1000, timezone.utc).replace(tzinfo=None)
        assert row[9] == env.topic
    # The strategies themselves are what the service always stored.
    assert dict(env.query("SELECT strategy_hash, current_score FROM strategies")) == {
        "A": 0.30, "B": 0.50, "C": 0.7, "D": 0.42}
    # Every row sits in its month's partition, which exists with the next month's.
    [(now_db,)] = env.query("SELECT now()::timestamp")
    this = now_db.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (this + timedelta(days=32)).replace(day=1)
    names = {f"strategy_score_history_y{m.year:04d}m{m.month:02d}" for m in (this, following)}
    assert names | {"strategy_score_history_default"} <= month_partitions(env)
    assert env.query("SELECT DISTINCT tableoid::regclass::text FROM strategy_score_history") == [
        (f"strategy_score_history_y{this.year:04d}m{this.month:02d}",)]


def test_the_flag_off_writes_no_history(env):
    env.produce([strategy("A", 0.1), strategy("A", 0.2), strategy("B", 0.3)], partition=0)
    env.drain("--score_history=false")
    assert env.query("SELECT count(*) FROM strategies") == [(2,)]
    assert env.query("SELECT count(*) FROM strategy_score_history") == [(0,)]
    # The environment variable says the same; a flag beats it.
    env.produce([strategy("C", 0.4)], partition=1)
    result = subprocess.run(env.flags("--idle_timeout_seconds=1"), capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SCORE_HISTORY": "false"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert env.query("SELECT count(*) FROM strategy_score_history") == [(0,)]
    env.produce([strategy("C", 0.5)], partition=1)
    result = subprocess.run(env.flags("--idle_timeout_seconds=1", "--score_history=true"), capture_output=True,
                            text=True, timeout=120, env={**os.environ, "SCORE_HISTORY": "false"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert env.query("SELECT strategy_hash, score FROM strategy_score_history") == [("C", 0.5)]


def test_retention_drops_whole_old_partitions_and_keeps_the_current(env):
    env.produce([strategy("A", 0.1)], partition=0)
    env.drain()
    # An old month's partition with a row, and an old row that fell into DEFAULT.
    env.query("CREATE TABLE strategy_score_history_y2020m01 PARTITION OF strategy_score_history"
              " FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')")
    env.query("INSERT INTO strategy_score_history (strategy_hash, score, stored_at) VALUES"
              " ('old', 0.5, '2020-01-15'), ('older', 0.5, '2019-06-01')")
    # An operator's own table whose name looks alike is never touched.
    env.query("CREATE TABLE strategy_score_history_y2020m01_archive (x int)")
    assert "strategy_score_history_y2020m01" in month_partitions(env)
    env.produce([strategy("A", 0.2)], partition=0)
    env.drain("--score_history_retention_days=400")
    partitions = month_partitions(env)
    assert "strategy_score_history_y2020m01" not in partitions
    assert env.query("SELECT to_regclass('strategy_score_history_y2020m01')") == [(None,)]
    assert env.query("SELECT to_regclass('strategy_score_history_y2020m01_archive') IS NOT NULL") == [(True,)]
    assert "strategy_score_history_default" in partitions
    assert env.query("SELECT strategy_hash, score FROM strategy_score_history ORDER BY score") == [
        ("A", 0.1), ("A", 0.2)]
    [(now_db,)] = env.query("SELECT now()::timestamp")
    assert f"strategy_score_history_y{now_db.year:04d}m{now_db.month:02d}" in partitions


def test_a_refused_row_has_no_history_and_its_neighbours_have_theirs(env):
    """A row PostgreSQL refuses (here: a CHECK on the score) is dead-lettered; the batch is written again in
    bisected savepoints, and the history holds exactly the rows that were stored."""
    env.drain()  # the schema
    env.query("ALTER TABLE strategies ADD CONSTRAINT no_negative_scores CHECK (current_score >= 0)")
    msgs = [strategy(f"S{i}", 0.1 * i) for i in range(8)] + [strategy("BAD", -1.0), strategy("S3", 0.9)]
    env.produce(msgs, partition=0)
    env.drain()
    assert env.query("SELECT strategy_hash, count(*) FROM strategy_score_history GROUP BY 1 ORDER BY 1") == [
        ("S0", 1), ("S1", 1), ("S2", 1), ("S3", 2), ("S4", 1), ("S5", 1), ("S6", 1), ("S7", 1)]
    assert env.query("SELECT source_offset FROM strategy_score_history WHERE strategy_hash = 'S3'"
                     " ORDER BY source_offset") == [(3,), (9,)]


@pytest.fixture
def history_client(pg):
    name = pg.create_database(f"history_{int(time.time() * 1000) % 10**9}")
    client = PostgresClient(host=pg.host, port=pg.port, database=name, user=pg.user, max_connections=2)
    return client


def window(end: str) -> dict:
    e = datetime.fromisoformat(end).replace(tzinfo=timezone.utc)
    return {"discovery_start_time": (e - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "discovery_end_time": e.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_the_readers_on_known_history(history_client):
    client = history_client
    macd = {"shortEmaPeriod": 10, "longEmaPeriod": 25, "signalPeriod": 8}
    a = dict(symbol="ETH/USD", strategy_type="SMA_RSI", parameters=SMA_RSI)
    b = dict(symbol="BTC/USD", strategy_type="SMA_RSI", parameters={**SMA_RSI, "rsiPeriod": 15})
    m = dict(symbol="BTC/USD", strategy_type="MACD_CROSSOVER", parameters=macd)
    # In three calls (three transactions): January, February, March windows.
    assert client.bulk_insert_strategies([{**a, "score": 1.0, **window("2026-01-10")},
                                          {**m, "score": 2.0, **window("2026-01-20")}]).success_count == 2
    # One call with A twice: both are history rows (each message once), the row keeps the last.
    assert client.bulk_insert_strategies([{**a, "score": 1.5, **window("2026-02-10")},
                                          {**a, "score": 1.25, **window("2026-02-20")},
                                          {**b, "score": 3.0, **window("2026-02-15")}]).success_count == 3
    assert client.bulk_insert_strategies([{**a, "score": 2.0, "performance_metrics": {"sharpe_ratio": 1.1},
                                           **window("2026-03-05")},
                                          {**m, "score": 1.0, **window("2026-03-07")}]).success_count == 2
    rows = client.get_score_history()
    assert len(rows) == 7
    assert {r["source_topic"] for r in rows} == {None} and {r["source_offset"] for r in rows} == {None}
    a_hash = next(r["strategy_hash"] for r in rows if r["symbol"] == "ETH/USD")
    assert [r["score"] for r in client.get_score_history(a_hash)] == [1.0, 1.5, 1.25, 2.0]
    assert len(client.get_score_history(strategy_type="MACD_CROSSOVER")) == 2
    assert len(client.get_score_history(symbol="BTC/USD")) == 3
    assert len(client.get_score_history(limit=2)) == 2
    assert client.get_score_history(since=datetime.now(timezone.utc) + timedelta(days=1)) == []
    assert len(client.get_score_history(since=datetime.now(timezone.utc) - timedelta(days=1),
                                        until=datetime.now(timezone.utc) + timedelta(days=1))) == 7

    history = analysis.load_score_history(client)
    assert list(history.columns) == list(analysis.HISTORY_COLUMNS)
    assert len(history) == 7 and history["at"].is_monotonic_increasing
    one = analysis.score_over_time(history, a_hash)
    assert one["score"].tolist() == [1.0, 1.5, 1.25, 2.0]
    assert one["change"].iloc[1:].round(6).tolist() == [0.5, -0.25, 0.75] and pd.isna(one["change"].iloc[0])
    assert one["at"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-10", "2026-02-10", "2026-02-20", "2026-03-05"]
    assert one["sharpe_ratio"].iloc[3] == 1.1 and pd.isna(one["sharpe_ratio"].iloc[0])
    assert analysis.score_over_time(history, "no such strategy").empty

    drift = analysis.score_drift(history)
    got = {(r.strategy_type, str(r.period)): (r.discoveries, r.strategies, round(r.mean_score, 6),
                                              None if pd.isna(r.change) else round(r.change, 6), r.rediscoveries,
                                              None if pd.isna(r.mean_rediscovery_change)
                                              else round(r.mean_rediscovery_change, 6))
           for r in drift.itertuples()}
    assert got == {
        ("MACD_CROSSOVER", "2026-01"): (1, 1, 2.0, None, 0, None),
        ("MACD_CROSSOVER", "2026-03"): (1, 1, 1.0, -1.0, 1, -1.0),
        ("SMA_RSI", "2026-01"): (1, 1, 1.0, None, 0, None),
        # A at 1.5 and 1.25 (changes +0.5, -0.25), B new at 3.0.
        ("SMA_RSI", "2026-02"): (3, 2, round((1.5 + 1.25 + 3.0) / 3, 6), round((1.5 + 1.25 + 3.0) / 3 - 1.0, 6), 2,
                                 0.125),
        ("SMA_RSI", "2026-03"): (1, 1, 2.0, round(2.0 - (1.5 + 1.25 + 3.0) / 3, 6), 1, 0.75),
    }
    by_symbol = analysis.score_drift(history, "M", by="symbol")
    assert set(by_symbol["symbol"]) == {"ETH/USD", "BTC/USD"}
    assert analysis.score_drift(history.iloc[0:0]).empty


def test_the_client_can_leave_the_history_alone(pg):
    name = pg.create_database(f"nohistory_{int(time.time() * 1000) % 10**9}")
    client = PostgresClient(host=pg.host, port=pg.port, database=name, user=pg.user, score_history=False)
    assert client.bulk_insert_strategies([strategy("A", 0.1)]).success_count == 1
    assert client.get_strategy("A")["current_score"] == 0.1
    assert client.get_score_history() == []
