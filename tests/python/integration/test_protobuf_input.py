"""Protobuf input through the real binary: a topic of discovery.DiscoveredStrategy messages (python3-protobuf,
keyed by symbol) drained into an empty database with the defaults, and into a database the old TradeStream
service created and filled, with --parameters_layout=tradestream --strategy_hash_scheme=tradestream."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path

from strategy_consumer import protobuf as pb
from strategy_consumer.services import produce
from strategy_consumer.strategy_inspector import strategy_hash
from strategy_consumer.testing import create_test_strategies, to_protobuf

OLD_SCHEMA = Path(__file__).resolve().parents[2] / "data" / "tradestream_old_schema.sql"
VECTOR_HASH = "441af2fa3d5a98ac8bec8aac2e2c0dae8a34b0fa7974bfe5ca8fe5a586c967e9"
MACD = {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}


def by_symbol(value: bytes) -> bytes:
    return pb.decode_strategy(value).symbol.encode()


def produce_keyed(env, values, key_of=None) -> None:
    """Produces with the symbol as the key, as the discovery pipeline does."""
    produce(env.kafka.bootstrap, env.topic, values, key_of=key_of or by_symbol)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def test_protobuf_topic_into_an_empty_database_with_the_defaults(env):
    strategies = create_test_strategies(60, seed=14)
    values = [to_protobuf(s, enum=i % 4 == 0) for i, s in enumerate(strategies)]  # a quarter in the enum form
    truncated = values[0][:25]
    produce_keyed(env, values[:30] + [truncated] + values[30:], lambda v: by_symbol(v) if v != truncated else b"x")
    env.drain()

    rows = env.query("SELECT symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol,"
                     " discovery_start_time, discovery_end_time, performance_metrics FROM strategies")
    assert len(rows) == 60
    stored = {r[4]: r for r in rows}
    for i, s in enumerate(strategies):
        r = stored[strategy_hash(s["symbol"], s["strategy_type"], s["parameters"])]
        # The row keeps the name the message carried: the old enum spells BBAND_WILLIAMS_R as BBAND_W_R.
        carried = "BBAND_W_R" if i % 4 == 0 and s["strategy_type"] == "BBAND_WILLIAMS_R" else s["strategy_type"]
        assert r[0] == s["symbol"] and r[1] == carried
        assert r[2] == s["parameters"]  # named values, as sent
        assert r[3] == s["current_score"]
        assert r[5] == s["symbol"]
        assert r[6] == utc(s["discovery_start_time"]) and r[7] == utc(s["discovery_end_time"])
        assert r[8] is None  # the protobuf message has no metrics
    assert sum(env.stored_offsets().values()) == 61

    letters = env.dead_letters(1)
    assert len(letters) == 1
    letter, headers = letters[0]
    assert letter["message_format"] == "protobuf"
    assert letter["original_message_encoding"] == "base64"
    assert base64.b64decode(letter["original_message"]) == truncated
    assert letter["reasons"][0]["rule"] == "protobuf.truncated"
    assert headers["dlq.stage"] == "decode"


def old_row(symbol: str, params: dict, score: float, message_name="MacdCrossoverParameters"):
    """A row as the old service wrote it: its parameters layout and its hash of the serialized Any."""
    any_message = pb.message_class("google.protobuf.Any")()
    any_message.type_url = pb.TYPE_URL_PREFIX + "strategies." + message_name
    any_message.value = pb.parameters_message(message_name, params).SerializeToString()
    hexdata = any_message.value.hex()
    layout = {"protobuf_type": any_message.type_url, "protobuf_data": hexdata,
              "raw_parameters": {"type_url": any_message.type_url, "value": hexdata}}
    return (symbol, layout, score, hashlib.sha256(any_message.SerializeToString()).hexdigest())


def commit_old_group_offsets(env, offsets: dict[int, int]) -> None:
    """The old service's group committed these offsets in Kafka."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": env.kafka.bootstrap, "group.id": env.group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(env.topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def test_adopting_the_old_services_database(env):
    env.query(OLD_SCHEMA.read_text())
    # What the old service stored: the README's test vector (an old score) and a strategy it named in specs.
    for symbol, layout, score, h in [old_row("BTC/USD", MACD, 0.5)]:
        env.query("INSERT INTO strategies (symbol, strategy_type, parameters, current_score, strategy_hash,"
                  " discovery_symbol, first_discovered_at, created_at) VALUES (%s, 'MACD_CROSSOVER', %s, %s, %s,"
                  " %s, '2024-01-01', '2024-01-01')", symbol, json.dumps(layout), score, h, symbol)
    env.query("INSERT INTO strategy_specs (name, indicators, entry_conditions, exit_conditions, parameters, source)"
              " VALUES ('MACD_CROSSOVER', '[]', '[]', '[]', '[]', 'MIGRATED')")
    env.query("INSERT INTO strategy_implementations (spec_id, parameters, discovered_by)"
              " SELECT id, '{}', 'GA' FROM strategy_specs")
    assert env.query("SELECT strategy_hash FROM strategies")[0][0] == VECTOR_HASH

    # Messages the old service already consumed: before the offsets its group committed. Never read again.
    consumed = [to_protobuf({"symbol": "OLD/USD", "strategy_type": "PIVOT", "parameters": {"period": 10 + p},
                             "current_score": 9.0}) for p in range(env.partitions)]
    for p in range(env.partitions):
        env.produce([consumed[p]], partition=p)
    commit_old_group_offsets(env, {p: 1 for p in range(env.partitions)})

    vector = {"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "parameters": MACD,
              "discovery_start_time": "2024-01-01T00:00:00Z", "discovery_end_time": "2024-01-01T01:00:00Z"}
    rediscovered = [to_protobuf({**vector, "current_score": score}, enum=score == 0.7) for score in (0.6, 0.7, 0.85)]
    others, seen = [], {VECTOR_HASH}
    for s in create_test_strategies(60, seed=15):  # 20 with distinct tradestream hashes (symbol is not in it)
        h = old_row(s["symbol"], s["parameters"], 0, pb.parameter_message_of(s["strategy_type"]))[3]
        if h not in seen and len(others) < 20:
            seen.add(h)
            others.append(s)
    # The same parameters found for a second symbol: the tradestream hash ignores the symbol (README).
    second_symbol = to_protobuf({**vector, "symbol": "ETH/USD", "current_score": 0.9})
    values = rediscovered[:2] + [to_protobuf(s) for s in others] + rediscovered[2:]
    produce_keyed(env, values)
    flags = ("--parameters_layout=tradestream", "--strategy_hash_scheme=tradestream")
    env.drain(*flags)

    rows = env.query("SELECT strategy_hash, symbol, strategy_type, parameters, current_score, first_discovered_at,"
                     " discovery_start_time FROM strategies")
    hashes = [r[0] for r in rows]
    assert len(hashes) == len(set(hashes)) == 1 + 20  # no duplicates: the old row was updated in place
    assert "OLD/USD" not in {r[1] for r in rows}  # the old group's committed offsets were respected
    row = next(r for r in rows if r[0] == VECTOR_HASH)
    assert row[4] == 0.85 and row[5] == datetime(2024, 1, 1) and row[6] == datetime(2024, 1, 1)
    # An existing row keeps its parameters as the old service wrote them (an upsert never rewrites parameters).
    assert row[3] == {"protobuf_type": "type.googleapis.com/strategies.MacdCrossoverParameters",
                      "protobuf_data": "080c101a1809",
                      "raw_parameters": {"type_url": "type.googleapis.com/strategies.MacdCrossoverParameters",
                                         "value": "080c101a1809"}}
    for s in others:
        symbol, layout, _, h = old_row(s["symbol"], s["parameters"], 0, pb.parameter_message_of(s["strategy_type"]))
        r = next(r for r in rows if r[0] == h)
        assert r[1] == s["symbol"] and r[2] == s["strategy_type"]
        assert r[3] == {**layout, "named": s["parameters"]}
        assert r[4] == s["current_score"]

    specs = env.query("SELECT name, indicators, entry_conditions, exit_conditions, parameters, source"
                      " FROM strategy_specs")
    assert {s[0] for s in specs} == {"MACD_CROSSOVER"} | {s["strategy_type"] for s in others}
    assert all(s[1:] == ([], [], [], [], "MIGRATED") for s in specs)
    assert env.query("SELECT count(*) FROM strategy_implementations")[0][0] == 1  # left as it was
    indexes = {r[0] for r in env.query("SELECT indexname FROM pg_indexes WHERE tablename = 'strategies'")}
    assert {"idx_strategies_discovery_symbol", "idx_strategies_created_at", "idx_strategies_symbol"} <= indexes
    assert env.query("SELECT count(*) FROM strategy_consumer_migrations")[0][0] >= 3
    stored = env.stored_offsets()
    assert sum(stored.values()) == env.partitions + len(values)  # our table took over
    # The score history was added to the old database too: one row per message applied (the vector's three
    # re-discoveries each), none for what the old group had consumed.
    history = env.query("SELECT strategy_hash, score FROM strategy_score_history WHERE strategy_hash = %s"
                        " ORDER BY score", VECTOR_HASH)
    assert history == [(VECTOR_HASH, 0.6), (VECTOR_HASH, 0.7), (VECTOR_HASH, 0.85)]
    assert env.query("SELECT count(*) FROM strategy_score_history")[0][0] == len(values)

    # The same parameters found for a second symbol in a later run: no new row; its score lands on the first
    # symbol's row (what the tradestream scheme gets wrong, README).
    produce_keyed(env, [second_symbol])
    env.drain(*flags)
    rows = env.query("SELECT strategy_hash, symbol, current_score FROM strategies")
    assert len(rows) == 21
    assert next(r for r in rows if r[0] == VECTOR_HASH)[1:] == ("BTC/USD", 0.9)
    assert env.query("SELECT count(*) FROM strategy_specs")[0][0] == len(specs)


def test_strategy_specs_are_written_once_per_database_from_one_process(env):
    """The Python client fills strategy_specs too, and a name sent to one database is still sent to another."""
    from contextlib import closing

    from strategy_consumer.postgres_client import PostgresClient
    from strategy_consumer.testing import create_test_protobuf

    second = env.pg.create_database(env.database + "_2")
    for database in (env.database, second):
        with closing(env.pg.connect(database)) as conn, conn.cursor() as cur:
            cur.execute(OLD_SCHEMA.read_text())
    for database in (env.database, second):
        client = PostgresClient(host=env.pg.host, port=env.pg.port, database=database, user=env.pg.user,
                                parameters_layout="tradestream", strategy_hash_scheme="tradestream")
        assert client.bulk_insert_strategies([create_test_protobuf(), create_test_protobuf(enum=True)]).inserted == 1
        with closing(env.pg.connect(database)) as conn, conn.cursor() as cur:
            cur.execute("SELECT name, source FROM strategy_specs")
            assert cur.fetchall() == [("MACD_CROSSOVER", "MIGRATED")]
