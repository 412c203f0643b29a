"""Helpers for tests of code that uses strategy_consumer: sample strategies and throwaway servers.

>>> from strategy_consumer.testing import create_test_strategies, PostgresServer
>>> with PostgresServer() as pg:
...     client = PostgresClient(pg.dsn())
...     client.bulk_insert_strategies(create_test_strategies(100)).success_count
100
"""

from __future__ import annotations

import random
from typing import Any

from . import samples
from .services import DevBroker, PostgresServer, find_binary, free_port, produce
from .strategy_inspector import strategy_hash

__all__ = ["create_test_strategy", "create_test_strategies", "create_test_protobuf", "create_test_protobufs",
           "to_protobuf", "PostgresServer", "DevBroker", "produce", "find_binary", "free_port"]


def create_test_strategy(**overrides: Any) -> dict:
    """One valid strategy message (MACD_CROSSOVER on BTC/USD at the catalog's defaults) with ``overrides``."""
    strategy = {
        "symbol": "BTC/USD",
        "strategy_type": "MACD_CROSSOVER",
        "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9},
        "current_score": 0.85,
        "performance_metrics": {"total_return": 0.15, "sharpe_ratio": 1.2, "max_drawdown": -0.05,
                                "win_rate": 0.65, "profit_factor": 1.8, "total_trades": 150,
                                "avg_trade_duration": 2.5},
        "discovery_symbol": "BTC/USD",
        "discovery_start_time": "2026-10-01T00:00:00Z",
        "discovery_end_time": "2026-10-31T00:00:00Z",
    }
    strategy.update(overrides)
    return strategy


def create_test_strategies(n: int, seed: int = 0) -> list[dict]:
    """n valid, varied strategies with n distinct hashes, drawn from the catalog; the same seed gives the same
    list."""
    out, seen = [], set()
    rng = random.Random(seed)
    catalog = samples.load_catalog()
    while len(out) < n:
        s = samples.sample_strategy(rng, catalog)
        h = strategy_hash(s["symbol"], s["strategy_type"], s["parameters"])
        if h not in seen:
            seen.add(h)
            out.append(s)
    return out


def to_protobuf(strategy: dict, *, enum: bool = False) -> bytes:
    """A strategy dict as the discovery pipeline publishes it (binary ``discovery.DiscoveredStrategy``; the enum
    form of messages before 2026-01 with ``enum=True``). Works for any catalog type; performance metrics and
    other fields the message has no place for are dropped."""
    from .protobuf import encode_strategy

    return encode_strategy(strategy, enum=enum)


def create_test_protobuf(*, enum: bool = False, **overrides: Any) -> bytes:
    """create_test_strategy(**overrides) as protobuf bytes."""
    return to_protobuf(create_test_strategy(**overrides), enum=enum)


def create_test_protobufs(n: int, seed: int = 0, enum_every: int = 0) -> list[bytes]:
    """create_test_strategies(n, seed) as protobuf bytes; every ``enum_every``-th one (0: none) in the enum form."""
    return [to_protobuf(s, enum=bool(enum_every) and i % enum_every == 0)
            for i, s in enumerate(create_test_strategies(n, seed))]
