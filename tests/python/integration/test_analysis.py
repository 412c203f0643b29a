"""strategy_consumer.analysis against a seeded throwaway PostgreSQL: every figure is checked against what was
inserted (counts, order, the catalog's ranges, the inspector's warnings)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from strategy_consumer import DatabaseError, analysis
from strategy_consumer.errors import ConfigError
from strategy_consumer.postgres_client import PostgresClient
from strategy_consumer.strategy_inspector import StrategyInspector, strategy_hash
from strategy_consumer.testing import create_test_strategies, create_test_strategy, free_port

N = 600
CATALOG = StrategyInspector().strategy_types


def _outliers() -> dict[str, dict]:
    """Strategies each of which draws one known warning (and nothing else), by kind."""
    metrics = create_test_strategy()["performance_metrics"]
    base = dict(symbol="XRP/USD", strategy_type="MACD_CROSSOVER")
    return {
        "few_trades": create_test_strategy(**base, parameters={"shortEmaPeriod": 10, "longEmaPeriod": 25, "signalPeriod": 8},
                                           performance_metrics={**metrics, "total_trades": 12}),
        "high_win_rate": create_test_strategy(**base, parameters={"shortEmaPeriod": 11, "longEmaPeriod": 25, "signalPeriod": 8},
                                              performance_metrics={**metrics, "win_rate": 0.95}),
        "high_sharpe": create_test_strategy(**base, parameters={"shortEmaPeriod": 12, "longEmaPeriod": 25, "signalPeriod": 8},
                                            performance_metrics={**metrics, "sharpe_ratio": 5.5}),
        "parameter_at_edge": create_test_strategy(**base, parameters={"shortEmaPeriod": 8, "longEmaPeriod": 25, "signalPeriod": 8}),
    }


class Seeded:
    """What the database holds, as the test computed it from the messages (last write wins per hash)."""

    def __init__(self, pg):
        self.database = pg.create_database("analysis")
        self.environ = {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_DB": self.database,
                        "POSTGRES_USER": pg.user}
        self.client = PostgresClient(host=pg.host, port=pg.port, database=self.database, user=pg.user,
                                     max_connections=2)
        messages = create_test_strategies(N, seed=11)
        self.outliers = _outliers()
        messages += list(self.outliers.values())
        assert self.client.bulk_insert_strategies(messages).success_count == len(messages)
        # Re-discoveries: every tenth strategy again, in a later batch, with another score and window.
        again = []
        for i, m in enumerate(messages[:N:10]):
            again.append({**m, "current_score": round(m["current_score"] + 0.5, 6),
                          "discovery_end_time": "2026-10-31T%02d:00:00Z" % (i % 24)})
        result = self.client.bulk_insert_strategies(again)
        assert result.updated == len(again)
        self.rediscovered = {self.hash(m) for m in again}
        self.stored = {self.hash(m): m for m in messages}
        self.stored.update({self.hash(m): m for m in again})

    @staticmethod
    def hash(m: dict) -> str:
        return strategy_hash(m["symbol"], m["strategy_type"], m["parameters"])


@pytest.fixture(scope="module")
def seeded(pg):
    return Seeded(pg)


@pytest.fixture(scope="module")
def frame(seeded):
    return analysis.load_strategies(analysis.client_from_environment(seeded.environ))


def test_client_from_environment_reads_postgres_variables(seeded):
    client = analysis.client_from_environment(seeded.environ)
    assert client.count_strategies() == len(seeded.stored)
    assert client.config.database == seeded.database and client.config.port == int(seeded.environ["POSTGRES_PORT"])


def test_client_from_environment_defaults_and_errors():
    port = free_port()
    with pytest.raises(DatabaseError, match=f"postgres@localhost:{port}/tradestream"):
        analysis.client_from_environment({"POSTGRES_PORT": str(port)})
    with pytest.raises(ConfigError, match="POSTGRES_PORT='five'"):
        analysis.client_from_environment({"POSTGRES_PORT": "five"})
    with pytest.raises(ValueError, match="outside"):
        analysis.client_from_environment({"POSTGRES_PORT": "70000"})


def test_load_strategies_flattens_every_row(seeded, frame):
    assert len(frame) == len(seeded.stored) == N + len(seeded.outliers)
    assert frame["strategy_hash"].is_unique and set(frame["strategy_hash"]) == set(seeded.stored)
    assert list(frame["current_score"]) == sorted(frame["current_score"], reverse=True)  # best first
    for column in ("discovery_end_time", "first_discovered_at", "updated_at"):
        assert str(frame[column].dt.tz) == "UTC"
    assert set(frame.loc[frame["rediscovered"], "strategy_hash"]) == seeded.rediscovered
    for _, row in frame.sample(50, random_state=1).iterrows():
        m = seeded.stored[row["strategy_hash"]]
        assert row["current_score"] == m["current_score"]
        assert row["family"] == CATALOG[m["strategy_type"]]["family"]
        for name, value in m["parameters"].items():
            assert row[analysis.PARAMETER_PREFIX + name] == value
        for name in analysis.STANDARD_METRICS:
            assert row[name] == m["performance_metrics"][name]
        assert row["discovery_end_time"] == pd.Timestamp(m["discovery_end_time"])
        absent = set(CATALOG) - {m["strategy_type"]}
        other = {analysis.PARAMETER_PREFIX + p["name"] for t in absent for p in CATALOG[t]["parameters"]}
        other -= {analysis.PARAMETER_PREFIX + n for n in m["parameters"]}
        assert row[sorted(other)].isna().all()


def test_load_strategies_filters(seeded):
    client = analysis.client_from_environment(seeded.environ)
    by_symbol = Counter(m["symbol"] for m in seeded.stored.values())
    symbol = by_symbol.most_common(1)[0][0]
    assert len(analysis.load_strategies(client, symbol=symbol)) == by_symbol[symbol]
    xrp_macd = [m for m in seeded.stored.values() if (m["symbol"], m["strategy_type"]) == ("XRP/USD", "MACD_CROSSOVER")]
    got = analysis.load_strategies(client, symbol="XRP/USD", strategy_type="MACD_CROSSOVER")
    assert len(got) == len(xrp_macd) == len(seeded.outliers)
    assert len(analysis.load_strategies(client, limit=7)) == 7
    empty = analysis.load_strategies(client, symbol="NOPE/USD")
    assert empty.empty and "current_score" in empty and "sharpe_ratio" in empty


def test_counts_by_symbol_and_type_equal_what_was_inserted(seeded, frame):
    counts = analysis.counts_by_symbol_and_type(frame)
    expected = Counter((m["symbol"], m["strategy_type"]) for m in seeded.stored.values())
    assert int(counts.to_numpy().sum()) == len(seeded.stored)
    for (symbol, strategy_type), n in expected.items():
        assert counts.loc[symbol, strategy_type] == n
    assert list(counts.index) == sorted(counts.index)
    families = analysis.counts_by_symbol_and_type(frame, by="family")
    expected_families = Counter(CATALOG[m["strategy_type"]]["family"] for m in seeded.stored.values())
    assert families.sum().to_dict() == dict(expected_families)
    assert analysis.counts_by_symbol_and_type(frame.iloc[:0]).empty


def test_score_distribution_and_samples(seeded, frame):
    stats = analysis.score_distribution(frame)
    by_type: dict[str, list[float]] = {}
    for m in seeded.stored.values():
        by_type.setdefault(m["strategy_type"], []).append(m["current_score"])
    assert set(stats.index) == set(by_type)
    for t, scores in by_type.items():
        assert stats.loc[t, "count"] == len(scores)
        assert stats.loc[t, "median"] == pytest.approx(float(np.median(scores)))
        assert stats.loc[t, "max"] == max(scores)
    assert list(stats["median"]) == sorted(stats["median"], reverse=True)
    samples = analysis.score_samples(frame)
    assert list(samples) == list(stats.index)
    assert sorted(samples["MACD_CROSSOVER"]) == sorted(by_type["MACD_CROSSOVER"])


def test_top_per_symbol_sorted_and_equal_to_the_database(seeded, frame):
    top = analysis.top_per_symbol(frame, 3)
    for symbol in {m["symbol"] for m in seeded.stored.values()}:
        table = top.loc[symbol]
        assert list(table.index) == list(range(1, len(table) + 1))
        assert list(table["current_score"]) == sorted(table["current_score"], reverse=True)
        best = seeded.client.top_strategies(3, symbol=symbol)
        assert list(table["current_score"]) == [b["current_score"] for b in best]
    assert set(top.loc["XRP/USD", "strategy_type"]) == {"MACD_CROSSOVER"}
    assert top.loc[("XRP/USD", 1), "parameters"].startswith("shortEmaPeriod=")


def test_discoveries_over_time_counts_each_strategy_once_at_its_latest_window(seeded, frame):
    daily = analysis.discoveries_over_time(frame, "D")
    assert list(daily.columns) == ["strategies"] and int(daily["strategies"].sum()) == len(seeded.stored)
    expected = Counter(datetime.fromisoformat(m["discovery_end_time"].replace("Z", "+00:00")).date()
                       for m in seeded.stored.values())
    got = {ts.date(): n for ts, n in daily["strategies"].items() if n}
    assert got == dict(expected)
    assert (daily.index[1:] - daily.index[:-1] == pd.Timedelta(days=1)).all()  # empty days are there, as 0
    weekly = analysis.discoveries_over_time(frame, "W", by="family")
    assert weekly.to_numpy().sum() == len(seeded.stored) and list(weekly.columns) == sorted(weekly.columns)
    stored = analysis.discoveries_over_time(frame, "H", time_column="first_discovered_at")
    assert int(stored.to_numpy().sum()) == len(seeded.stored)
    assert analysis.discoveries_over_time(frame.iloc[:0]).empty


def test_parameter_ranges_equal_the_catalog():
    for strategy_type, spec in CATALOG.items():
        ranges = analysis.parameter_ranges(strategy_type)
        assert list(ranges.index) == [p["name"] for p in spec["parameters"]]
        for p in spec["parameters"]:
            assert (ranges.loc[p["name"], "min"], ranges.loc[p["name"], "max"]) == (p["min"], p["max"])
            assert ranges.loc[p["name"], "default"] == p["default"]
    with pytest.raises(KeyError, match="QUANTUM_MOON"):
        analysis.parameter_ranges("QUANTUM_MOON")


def test_parameter_landscape_and_heatmap(seeded, frame):
    strategy_type = analysis.most_common_type(frame, min_parameters=2)
    of_type = [m for m in seeded.stored.values() if m["strategy_type"] == strategy_type]
    assert len(of_type) == max(Counter(m["strategy_type"] for m in seeded.stored.values()
                                       if len(CATALOG[m["strategy_type"]]["parameters"]) >= 2).values())
    spec = {p["name"]: p for p in CATALOG[strategy_type]["parameters"]}
    landscape = analysis.parameter_landscape(frame, strategy_type)
    assert len(landscape) == len(of_type) * len(spec)
    for name, rows in landscape.groupby("parameter"):
        assert set(rows["min"]) == {spec[name]["min"]} and set(rows["max"]) == {spec[name]["max"]}
        assert sorted(rows["value"]) == sorted(m["parameters"][name] for m in of_type)
    assert landscape["position"].between(0, 1).all()

    x, y = list(spec)[:2]
    counts = analysis.parameter_heatmap(frame, strategy_type, x, y, bins=5, agg="count")
    assert counts.fillna(0).to_numpy().sum() == len(of_type)
    for name, axis in ((x, counts.columns), (y, counts.index)):
        assert spec[name]["min"] - 0.5 <= axis.min() and axis.max() <= spec[name]["max"] + 0.5
        assert list(axis) == sorted(axis)
    means = analysis.parameter_heatmap(frame, strategy_type, x, y, bins=5)
    assert means.stack().between(frame["current_score"].min(), frame["current_score"].max()).all()
    # A small INTEGER range gets one bin per value: STOCHASTIC_EMA's stochasticDPeriod is [3, 5].
    grid = analysis.parameter_heatmap(frame, "STOCHASTIC_EMA", "stochasticKPeriod", "stochasticDPeriod")
    assert list(grid.index) == [3.0, 4.0, 5.0] and len(grid.columns) == 6
    with pytest.raises(KeyError, match="nope"):
        analysis.parameter_heatmap(frame, strategy_type, x, "nope")


def test_metric_pairs(frame):
    pairs = analysis.metric_pairs(frame)
    assert [tuple(p) for p in pairs[["x", "y"]].to_numpy()] == list(analysis.METRIC_PAIRS)
    assert list(pairs["n"]) == [len(frame)] * 2
    x, y = analysis.METRIC_PAIRS[0]
    assert pairs.loc[0, "pearson"] == pytest.approx(np.corrcoef(frame[x], frame[y])[0, 1])
    assert -1 <= pairs.loc[1, "spearman"] <= 1


def test_flag_outliers_reports_the_inspectors_warnings(seeded, frame):
    outliers = analysis.flag_outliers(frame)
    by_hash = dict(zip(frame["strategy_id"], frame["strategy_hash"]))
    flagged = {by_hash[i]: kinds for i, kinds in zip(outliers["strategy_id"], outliers["kinds"])}
    for kind, message in seeded.outliers.items():
        assert flagged[Seeded.hash(message)] == (kind,)
    inspector = StrategyInspector()
    expected = {h for h, m in seeded.stored.items() if inspector.analyze_strategy(m)["warnings"]}
    assert set(flagged) == expected
    assert outliers["metric_outlier"].equals(outliers["kinds"].map(lambda k: k != ("parameter_at_edge",)))
    assert outliers["few_trades"].sum() == sum("few_trades" in k for k in outliers["kinds"])
    assert not outliers["invalid"].any()
    counts = analysis.outlier_counts(outliers)
    assert counts.loc["few_trades", "strategies"] == outliers["few_trades"].sum()
    assert list(counts["strategies"]) == sorted(counts["strategies"], reverse=True)
    everything = analysis.flag_outliers(frame, all_rows=True)
    assert len(everything) == len(frame)


def test_flag_outliers_marks_what_todays_catalog_refuses(frame):
    row = frame[frame["strategy_type"] == "MACD_CROSSOVER"].head(1).copy()
    row.at[row.index[0], "parameters"] = {"shortEmaPeriod": 40, "longEmaPeriod": 26, "signalPeriod": 9}
    flagged = analysis.flag_outliers(row)
    assert flagged.loc[0, "invalid"] and flagged.loc[0, "kinds"][0] == "invalid"
    assert "outside the catalog's range" in flagged.loc[0, "reasons"][0]


def test_classify_warning_and_labels():
    assert analysis.classify_warning("only 12 trades: too few for the score to mean much") == "few_trades"
    assert analysis.classify_warning("something new") == "other"
    assert analysis.axis_label("max_drawdown").startswith("max drawdown (")
    assert analysis.axis_label("param_signalPeriod") == "signalPeriod (parameter value, catalog units)"
    assert set(analysis.__all__) <= set(dir(analysis))
