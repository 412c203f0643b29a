"""Realistic strategy messages, drawn from the strategy catalog the way the discovery pipeline draws them.

Used by the demo, the tests and the benchmarks. Reproducible: the same seed gives the same messages.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional

__all__ = ["CatalogType", "load_catalog", "sample_strategy", "sample_stream", "SYMBOLS"]

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD", "DOGE/USD", "AVAX/USD", "LINK/USD", "DOT/USD")


@dataclass
class CatalogParameter:
    name: str
    type: str  # INTEGER or DOUBLE
    min: float
    max: float
    default: float


@dataclass
class CatalogType:
    name: str
    parameters: list[CatalogParameter] = field(default_factory=list)


def load_catalog(path: Optional[Path] = None) -> dict[str, CatalogType]:
    """The catalog from a file, or (no path) the one compiled into the core."""
    if path is None:
        return _core_catalog()
    types: dict[str, CatalogType] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            t = types.setdefault(row["strategy_type"], CatalogType(row["strategy_type"]))
            if row["parameter"]:
                conv = int if row["type"] == "INTEGER" else float
                t.parameters.append(CatalogParameter(row["parameter"], row["type"], conv(row["min"]),
                                                     conv(row["max"]), conv(row["default"])))
    return types


def _core_catalog() -> dict[str, CatalogType]:
    from . import _core

    types = {}
    for name, spec in _core.StrategyInspector("", False).strategy_types.items():
        conv = {"INTEGER": int, "DOUBLE": float}
        types[name] = CatalogType(name, [CatalogParameter(p["name"], p["type"], conv[p["type"]](p["min"]),
                                                          conv[p["type"]](p["max"]), conv[p["type"]](p["default"]))
                                         for p in spec["parameters"]])
    return types


def _parameters(rng: random.Random, t: CatalogType) -> dict:
    out = {}
    for p in t.parameters:
        if p.type == "INTEGER":
            out[p.name] = rng.randint(int(p.min), int(p.max))
        else:
            out[p.name] = round(rng.uniform(p.min, p.max), 2)
    return out


def _metrics(rng: random.Random) -> dict:
    sharpe = round(rng.gauss(1.0, 0.6), 3)
    win_rate = round(min(0.85, max(0.25, rng.gauss(0.52, 0.08))), 3)
    trades = rng.randint(20, 600)
    return {
        "total_return": round(sharpe * rng.uniform(0.05, 0.2), 4),
        "sharpe_ratio": sharpe,
        "max_drawdown": round(-abs(rng.gauss(0.12, 0.06)), 4),
        "win_rate": win_rate,
        "profit_factor": round(max(0.2, rng.gauss(1.4, 0.4)), 3),
        "total_trades": trades,
        "avg_trade_duration": round(rng.uniform(0.5, 48.0), 2),
    }


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_strategy(rng: random.Random, catalog: dict[str, CatalogType], symbol: Optional[str] = None,
                    strategy_type: Optional[str] = None, now: Optional[datetime] = None) -> dict:
    t = catalog[strategy_type] if strategy_type else catalog[rng.choice(sorted(catalog))]
    symbol = symbol or rng.choice(SYMBOLS)
    now = now or datetime(2026, 11, 1, tzinfo=timezone.utc)
    end = now - timedelta(minutes=rng.randint(0, 60 * 24 * 20))
    start = end - timedelta(days=rng.choice((7, 14, 30, 90)))
    metrics = _metrics(rng)
    return {
        "symbol": symbol,
        "strategy_type": t.name,
        "parameters": _parameters(rng, t),
        "current_score": round(metrics["sharpe_ratio"] * 0.6 + metrics["win_rate"] * 0.4, 6),
        "performance_metrics": metrics,
        "discovery_symbol": symbol,
        "discovery_start_time": _iso(start),
        "discovery_end_time": _iso(end),
    }


def sample_stream(n: int, seed: int = 7, rediscover_ratio: float = 0.1,
                  catalog: Optional[dict[str, CatalogType]] = None) -> Iterator[dict]:
    """n valid messages; about ``rediscover_ratio`` of them re-send an earlier strategy with a new score, metrics
    and a later discovery window."""
    rng = random.Random(seed)
    catalog = catalog or load_catalog()
    earlier: list[dict] = []
    rediscoveries = 0
    for _ in range(n):
        if earlier and rng.random() < rediscover_ratio:
            again = dict(rng.choice(earlier))
            metrics = _metrics(rng)
            again["performance_metrics"] = metrics
            again["current_score"] = round(metrics["sharpe_ratio"] * 0.6 + metrics["win_rate"] * 0.4, 6)
            # A later discovery run: its window moved on by 3 to 30 days (no draw from rng, so a seed's other
            # strategies stay what they were).
            rediscoveries += 1
            shift = timedelta(days=3 + rediscoveries % 28)
            for key in ("discovery_start_time", "discovery_end_time"):
                moved = datetime.strptime(again[key], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + shift
                again[key] = _iso(moved)
            yield again
            continue
        s = sample_strategy(rng, catalog)
        if len(earlier) < 10000:
            earlier.append(s)
        else:
            earlier[rng.randrange(len(earlier))] = s
        yield s
