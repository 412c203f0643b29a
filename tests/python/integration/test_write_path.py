"""The batch write (postgres/sink.hpp) with new and known strategies in one batch, and with another writer holding
one of the batch's strategies uncommitted: the upsert waits for it and then updates it. Real PostgreSQL, through
PostgresClient's bulk insert (the service's write path)."""

from __future__ import annotations

import threading
import time

from strategy_consumer.postgres_client import PostgresClient
from strategy_consumer.strategy_inspector import StrategyInspector
from strategy_consumer.testing import create_test_strategies


def client_of(env) -> PostgresClient:
    return PostgresClient(host=env.pg.host, port=env.pg.port, database=env.database, user=env.pg.user)


def test_new_and_known_strategies_in_one_batch(env):
    client = client_of(env)
    first = create_test_strategies(30, seed=61)
    assert client.bulk_insert_strategies(first[:10]).inserted == 10
    again = [dict(s, current_score=2.5) for s in first[:10]]
    result = client.bulk_insert_strategies(again + first[10:])
    assert (result.success_count, result.inserted, result.updated) == (30, 20, 10)
    scores = dict(env.query("SELECT strategy_hash, current_score FROM strategies"))
    inspector = StrategyInspector()
    assert {scores[inspector.inspect(s)["strategy_hash"]] for s in again} == {2.5}
    assert len(scores) == 30
    # One history row per applied message.
    assert env.query("SELECT count(*) FROM strategy_score_history")[0][0] == 40


def test_a_strategy_another_writer_holds_uncommitted_is_waited_for_then_updated(env):
    client = client_of(env)
    client.migrate()
    strategies = create_test_strategies(5, seed=62)
    taken = StrategyInspector().inspect(strategies[2])["strategy_hash"]
    # Another writer's transaction inserts one of the batch's strategies and holds it uncommitted: the upsert
    # waits for it, and once it commits, updates it.
    other = env.pg.connect(env.database)
    other.autocommit = False
    with other.cursor() as cur:
        cur.execute("INSERT INTO strategies (symbol, strategy_type, parameters, current_score, strategy_hash)"
                    " VALUES ('X/Y', 'OTHER', '{}', 0.1, %s)", (taken,))
    results = []
    writer = threading.Thread(target=lambda: results.append(client.bulk_insert_strategies(strategies)))
    writer.start()
    deadline = time.time() + 10
    waiting = 0
    while time.time() < deadline and not waiting:
        waiting = env.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()")[0][0]
        time.sleep(0.05)
    assert waiting, "the bulk insert did not wait for the other writer's row"
    other.commit()
    other.close()
    writer.join(30)
    assert not writer.is_alive()
    [result] = results
    assert (result.success_count, result.failure_count, result.inserted, result.updated) == (5, 0, 4, 1)
    rows = dict(env.query("SELECT strategy_hash, strategy_type FROM strategies"))
    assert len(rows) == 5 and rows[taken] == "OTHER", "the upsert keeps the stored type and takes the new score"
    assert env.query("SELECT current_score FROM strategies WHERE strategy_hash = %s", taken)[0][0] == \
        strategies[2]["current_score"]
    assert env.query("SELECT count(*) FROM strategy_score_history")[0][0] == 5
