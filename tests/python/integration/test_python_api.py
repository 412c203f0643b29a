"""The Python package against a real PostgreSQL and the dev broker: the seed README's API, verbatim."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

import strategy_consumer
from strategy_consumer import ConfigError, Consumer, DatabaseError, StrategyConsumerError
from strategy_consumer.postgres_client import PostgresClient
from strategy_consumer.strategy_inspector import StrategyInspector
from strategy_consumer.testing import create_test_protobuf, create_test_strategies, create_test_strategy, to_protobuf


@pytest.fixture
def client(env):
    c = PostgresClient(host=env.pg.host, port=env.pg.port, database=env.database, user=env.pg.user,
                       min_connections=1, max_connections=4)
    yield c


def test_seed_readme_examples(client):
    inspector = StrategyInspector()
    strategy_data = create_test_strategy()
    assert inspector.validate_strategy(strategy_data) is True
    analysis = inspector.analyze_strategy(strategy_data)
    assert analysis["strategy_type"] == "MACD_CROSSOVER" and analysis["family"] == "trend"
    assert inspector.validate_parameters(strategy_data["parameters"]) is True
    assert inspector.extract_performance_metrics(strategy_data)["sharpe_ratio"] == 1.2

    strategies = create_test_strategies(100)
    result = client.bulk_insert_strategies(strategies)
    assert result.success_count == 100 and result.failure_count == 0 and result.inserted == 100
    some = strategies[7]
    stored = client.get_strategies_by_type(some["strategy_type"])
    assert some["parameters"] in [s["parameters"] for s in stored]
    assert client.get_strategy_count() == 100


def test_constructors_accept_keywords_dsn_uri_and_dict(env):
    dsn = f"host={env.pg.host} port={env.pg.port} dbname={env.database} user={env.pg.user}"
    uri = f"postgresql://{env.pg.user}@{env.pg.host}:{env.pg.port}/{env.database}"
    as_dict = {"host": env.pg.host, "port": env.pg.port, "database": env.database, "username": env.pg.user}
    for c in (PostgresClient(dsn), PostgresClient(uri), PostgresClient(as_dict)):
        assert c.count_strategies() == 0  # the first use applies the migrations
    with pytest.raises(ConfigError) as err:
        PostgresClient("host='unterminated")
    assert isinstance(err.value, ValueError)


def test_round_trip_of_every_column_type(client):
    s = create_test_strategy(discovery_start_time="2026-01-15T10:30:00.5+02:00",
                             discovery_end_time="2026-02-15T10:30:00Z", current_score=0.123456789012345)
    assert client.bulk_insert_strategies([s]).inserted == 1
    [row] = client.top_strategies(1)
    assert isinstance(row["strategy_id"], uuid.UUID)
    assert row == client.get_strategy(row["strategy_id"]) == client.get_strategy(str(row["strategy_id"]))
    assert row == client.get_strategy(row["strategy_hash"])
    assert row["current_score"] == 0.123456789012345 and isinstance(row["current_score"], float)
    assert row["parameters"] == s["parameters"] and row["performance_metrics"] == s["performance_metrics"]
    assert row["discovery_start_time"] == datetime(2026, 1, 15, 8, 30, 0, 500000, tzinfo=timezone.utc)
    assert row["discovery_end_time"] == datetime(2026, 2, 15, 10, 30, tzinfo=timezone.utc)
    for col in ("first_discovered_at", "last_evaluated_at", "created_at", "updated_at"):
        assert row[col].tzinfo == timezone.utc
        assert abs((datetime.now(timezone.utc) - row[col]).total_seconds()) < 60
    assert row["is_active"] is True and row["discovery_symbol"] == "BTC/USD"
    assert row["strategy_hash"] == strategy_consumer.strategy_hash(s["symbol"], s["strategy_type"], s["parameters"])
    assert client.get_strategy(uuid.uuid4()) is None and client.get_strategy("no-such-hash") is None


def test_queries_analysts_need(client, env):
    strategies = create_test_strategies(300, seed=3)
    client.bulk_insert_strategies(strategies)
    env.query("UPDATE strategies SET is_active = false WHERE current_score < 0.5")
    btc = [s for s in strategies if s["symbol"] == "BTC/USD"]
    rows = client.get_strategies_by_symbol("BTC/USD", active_only=False)
    assert len(rows) == len(btc)
    assert [r["current_score"] for r in rows] == sorted((s["current_score"] for s in btc), reverse=True)
    active = client.get_strategies_by_symbol("BTC/USD")
    assert all(r["is_active"] for r in active) and len(active) == sum(s["current_score"] >= 0.5 for s in btc)
    assert len(client.get_strategies_by_symbol("BTC/USD", limit=3, active_only=False)) == 3
    assert all(r["current_score"] >= 1.0 for r in client.get_strategies_by_symbol("BTC/USD", min_score=1.0))
    top = client.top_strategies(5)
    assert [r["current_score"] for r in top] == sorted((s["current_score"] for s in strategies), reverse=True)[:5]
    assert client.top_strategies(2, symbol="ETH/USD")[0]["symbol"] == "ETH/USD"
    assert client.count_strategies() == 300
    assert client.count_strategies(symbol="BTC/USD") == len(btc)
    assert client.count_strategies(active_only=True) == sum(s["current_score"] >= 0.5 for s in strategies)
    df = client.to_dataframe(top)
    assert list(df["current_score"]) == [r["current_score"] for r in top]


def test_bulk_insert_reports_failures_with_reasons_and_updates(client, env):
    good = create_test_strategies(5, seed=9)
    assert client.bulk_insert_strategies(good).inserted == 5
    again = dict(good[0], current_score=9.5)
    env.query("ALTER TABLE strategies ADD CONSTRAINT no_huge_scores CHECK (current_score < 100)")
    batch = [again, {"symbol": "BTC/USD"}, "{not json", create_test_strategy(current_score=150.0),
             create_test_strategy(parameters={"shortEmaPeriod": 99, "longEmaPeriod": 26, "signalPeriod": 9})]
    result = client.bulk_insert_strategies(batch)
    assert (result.success_count, result.failure_count, result.inserted, result.updated) == (1, 4, 0, 1)
    by_index = {f["index"]: f for f in result.failures}
    assert by_index[1]["stage"] == "decode" and by_index[1]["reasons"][0]["rule"] == "format.required"
    assert by_index[2]["stage"] == "decode" and by_index[2]["reasons"][0]["rule"] == "format.json"
    assert by_index[3]["stage"] == "database" and by_index[3]["reasons"][0]["rule"] == "database.23514"
    assert by_index[4]["stage"] == "validate" and by_index[4]["reasons"][0]["rule"] == "parameters.range"
    assert client.get_strategy(strategy_consumer.strategy_hash(
        again["symbol"], again["strategy_type"], again["parameters"]))["current_score"] == 9.5


def test_protobuf_bytes_enter_everywhere_a_strategy_does(client, env):
    """bulk_insert_strategies and StrategyInspector take the discovery pipeline's protobuf bytes next to dicts and
    JSON; the same strategy by either format is one row."""
    strategies = create_test_strategies(6, seed=21)
    batch = [to_protobuf(strategies[0]), to_protobuf(strategies[1], enum=True), strategies[2],
             json.dumps(strategies[3]), to_protobuf(strategies[4]), to_protobuf(strategies[4])[:20]]
    result = client.bulk_insert_strategies(batch)
    assert (result.success_count, result.failure_count, result.inserted) == (5, 1, 5)
    assert result.failures[0]["index"] == 5 and result.failures[0]["reasons"][0]["rule"] == "protobuf.truncated"
    for s in strategies[:5]:
        row = client.get_strategy(strategy_consumer.strategy_hash(s["symbol"], s["strategy_type"], s["parameters"]))
        assert row["parameters"] == s["parameters"] and row["current_score"] == s["current_score"]
    # The JSON of a strategy stored from protobuf updates that row (one hash whichever format brought it).
    again = client.bulk_insert_strategies([dict(strategies[0], current_score=4.25)])
    assert (again.inserted, again.updated) == (0, 1)
    inspector = StrategyInspector()
    assert inspector.validate_strategy(to_protobuf(strategies[0]))
    assert inspector.inspect(to_protobuf(strategies[0]))["strategy_hash"] == inspector.inspect(strategies[0])[
        "strategy_hash"]
    assert inspector.analyze_strategy(create_test_protobuf())["strategy_type"] == "MACD_CROSSOVER"

    old = PostgresClient(host=env.pg.host, port=env.pg.port, database=env.database, user=env.pg.user,
                         parameters_layout="tradestream", strategy_hash_scheme="tradestream")
    vector = create_test_protobuf(symbol="XRP/USD", current_score=0.85)
    assert old.bulk_insert_strategies([vector]).inserted == 1
    row = old.get_strategy("441af2fa3d5a98ac8bec8aac2e2c0dae8a34b0fa7974bfe5ca8fe5a586c967e9")
    assert row["symbol"] == "XRP/USD" and row["parameters"]["protobuf_data"] == "080c101a1809"
    assert row["parameters"]["named"] == create_test_strategy()["parameters"]


def test_errors_are_mapped(env):
    with pytest.raises(DatabaseError) as err:
        PostgresClient(host="127.0.0.1", port=1, database="x", user="postgres", min_connections=1)
    assert err.value.retryable is True and isinstance(err.value, StrategyConsumerError)
    with pytest.raises(ConfigError):
        Consumer(batch_size=0)
    with pytest.raises(ConfigError) as err:
        Consumer(no_such_flag=1)
    assert "--no_such_flag" in str(err.value)


def test_gil_is_released_during_bulk_insert(client):
    strategies = create_test_strategies(20000, seed=4)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    started = time.monotonic()
    try:
        result = client.bulk_insert_strategies(strategies)
    finally:
        done.set()
        t.join()
    assert result.success_count == 20000
    during = [x for x in ticks if x >= started]
    assert len(during) > 20, f"only {len(during)} ticks while the insert ran"


def test_consumer_runs_from_python_and_releases_the_gil(env):
    strategies = create_test_strategies(2000, seed=5)
    env.produce(strategies)
    consumer = Consumer(kafka_bootstrap_servers=env.kafka.bootstrap, kafka_topic=env.topic, kafka_group_id=env.group,
                        dlq_topic=env.dlq_topic, postgres_host=env.pg.host, postgres_port=env.pg.port,
                        postgres_database=env.database, postgres_username=env.pg.user,
                        kafka_property={"session.timeout.ms": 6000})
    ticks = []
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("reason", consumer.run()))
    worker.start()
    deadline = time.time() + 60
    while time.time() < deadline and consumer.counters["stored_new"] < 2000:
        ticks.append(time.monotonic())
        time.sleep(0.01)
    consumer.stop()
    worker.join(30)
    assert outcome["reason"] == "stopped"
    assert consumer.counters["stored_new"] == 2000 and consumer.counters["messages"] == 2000
    assert len(ticks) > 10
    assert env.query("SELECT count(*) FROM strategies") == [(2000,)]


def test_run_until_idle_and_python_dash_m(env):
    import os
    from pathlib import Path
    package_root = str(Path(strategy_consumer.__file__).resolve().parents[1])
    child_env = {**os.environ, "PYTHONPATH": package_root}
    env.produce(create_test_strategies(50, seed=6))
    flags = env.flags()[1:]
    r = subprocess.run([sys.executable, "-m", "strategy_consumer", *flags, "--idle_timeout_seconds=1"],
                       capture_output=True, text=True, timeout=120, env=child_env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert env.query("SELECT count(*) FROM strategies") == [(50,)]
    help_text = subprocess.run([sys.executable, "-m", "strategy_consumer", "--help"], capture_output=True,
                               text=True, timeout=60, env=child_env).stdout
    assert "--kafka_bootstrap_servers" in help_text
    env.produce(create_test_strategies(60, seed=6)[50:])
    consumer = Consumer(args=flags)
    assert consumer.run_until_idle(1) == "idle"
    assert env.query("SELECT count(*) FROM strategies") == [(60,)]
