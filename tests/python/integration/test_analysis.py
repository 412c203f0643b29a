"""strategy_consumer.analysis against a seeded throwaway PostgreSQL: every figure is checked against what was
inserted (counts, order, the catalog's ranges, the inspector's warnings)."""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategy_consumer import DatabaseError, analysis, rule_authoring
from strategy_consumer.errors import ConfigError
from strategy_consumer.postgres_client import PostgresClient
from strategy_consumer.rules import RuleSet, rule
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


# ---- analyst rules over the stored strategies ----

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_RULES = ["crossover_periods_inverted", "too_few_trades", "suspiciously_perfect_win_rate",
                 "drawdown_large_for_return"]  # examples/rules: parameters.py, then quality.py
PF_LIMIT = 1.0


@rule(description="a profit factor below 1 with a positive total return")
def profit_factor_contradicts_return(s):
    pf, ret = s.metric("profit_factor"), s.metric("total_return")
    if pf is not None and ret is not None and pf < 1 and ret > 0:
        return f"profit factor {pf} with a total return of {ret}"


@rule(severity="warn")
def short_window(s):
    """discovered over less than two weeks"""
    return (s.discovery_end_time - s.discovery_start_time).days >= 14


@rule
def raises_on_pivot(s):
    """fails on PIVOT"""
    return 1 / 0 if s.strategy_type == "PIVOT" else None


@rule
def reads_a_notebook_global(s):
    return s.metric("profit_factor", 2.0) >= PF_LIMIT


def _plain(s):
    return None


MY_RULES = [profit_factor_contradicts_return, short_window, raises_on_pivot]
ERROR = re.compile(r"ZeroDivisionError: division by zero \(at test_analysis\.py:\d+ in raises_on_pivot\)")


def _window_days(m: dict) -> int:
    start, end = (datetime.fromisoformat(m[k].replace("Z", "+00:00"))
                  for k in ("discovery_start_time", "discovery_end_time"))
    return (end - start).days


@pytest.fixture(scope="module")
def inspector():
    return StrategyInspector(rules=[rule_authoring.example_rules_path(), *MY_RULES])


@pytest.fixture(scope="module")
def verdicts(frame, inspector):
    return rule_authoring.evaluate_rules(frame, inspector)


def test_example_rules_path(tmp_path, monkeypatch):
    assert rule_authoring.example_rules_path() == ROOT / "examples" / "rules"
    assert RuleSet.load([rule_authoring.example_rules_path()]).names == EXAMPLE_RULES
    # An installed package: found above the working directory (a notebook runs in notebooks/), else an error.
    monkeypatch.setattr(rule_authoring, "__file__",
                        str(tmp_path / "site-packages" / "strategy_consumer" / "rule_authoring.py"))
    monkeypatch.chdir(ROOT / "notebooks")
    assert rule_authoring.example_rules_path() == ROOT / "examples" / "rules"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="examples/rules not found"):
        rule_authoring.example_rules_path()


def test_evaluate_rules_one_verdict_per_stored_strategy(seeded, frame, verdicts, inspector):
    assert inspector.rules == EXAMPLE_RULES + [r.name for r in MY_RULES]
    assert list(verdicts.columns) == list(rule_authoring.VERDICT_COLUMNS)
    assert list(verdicts["strategy_hash"]) == list(frame["strategy_hash"])  # the frame's order, stored hashes
    assert list(verdicts["strategy_id"]) == list(frame["strategy_id"])
    assert verdicts["rejected"].dtype == bool and verdicts["rejected"].equals(verdicts["stage"] != "")
    # Every stored strategy, against the same rules evaluated in pure Python on the message as inserted.
    in_python = RuleSet([*RuleSet.load([rule_authoring.example_rules_path()]).rules, *MY_RULES])
    for _, v in verdicts.iterrows():
        issues = in_python.check(seeded.stored[v["strategy_hash"]])
        refusals = [i for i in issues if i.severity == "reject"]
        warnings = [i for i in issues if i.severity == "warn"]
        assert v["rejected_by"] == tuple(i.rule for i in refusals)
        assert v["reasons"] == tuple(i.message for i in refusals)
        assert v["warned_by"] == tuple(i.rule for i in warnings)
        assert v["warnings"] == tuple(i.message for i in warnings)
        assert v["stage"] == (f"rule:{refusals[0].rule}" if refusals else "")
        assert (v["rule"], v["reason"]) == ((refusals[0].rule, refusals[0].message) if refusals else ("", ""))


def test_evaluate_rules_rejects_exactly_what_breaks_a_rule(seeded, verdicts):
    by_hash = verdicts.set_index("strategy_hash")
    refused_by = {name: set(by_hash.index[by_hash["rejected_by"].map(lambda r, n=name: n in r)])
                  for name in ("profit_factor_contradicts_return", "too_few_trades", "raises_on_pivot")}
    pf = {h for h, m in seeded.stored.items()
          if m["performance_metrics"]["profit_factor"] < 1 and m["performance_metrics"]["total_return"] > 0}
    assert pf and refused_by["profit_factor_contradicts_return"] == pf
    for h in pf:
        metrics = seeded.stored[h]["performance_metrics"]
        reasons = dict(zip(by_hash.at[h, "rejected_by"], by_hash.at[h, "reasons"]))
        assert reasons["profit_factor_contradicts_return"] == (
            f"profit factor {metrics['profit_factor']} with a total return of {metrics['total_return']}")
    few = {h for h, m in seeded.stored.items() if m["performance_metrics"]["total_trades"] < 30}
    assert refused_by["too_few_trades"] == few
    pivots = {h for h, m in seeded.stored.items() if m["strategy_type"] == "PIVOT"}
    assert pivots and refused_by["raises_on_pivot"] == pivots  # a rule that raises refuses, with where it raised
    assert all(ERROR.fullmatch(dict(zip(r, t))["raises_on_pivot"])
               for r, t in zip(by_hash.loc[sorted(pivots), "rejected_by"], by_hash.loc[sorted(pivots), "reasons"]))

    # The seeded outliers, exactly as the service would dead-letter them.
    few_trades = by_hash.loc[Seeded.hash(seeded.outliers["few_trades"])]
    assert (few_trades["stage"], few_trades["rule"], few_trades["reason"]) == (
        "rule:too_few_trades", "too_few_trades", "12 trades: a score from fewer than 30 trades is noise")
    perfect = by_hash.loc[Seeded.hash(seeded.outliers["high_win_rate"])]
    assert perfect["stage"] == "rule:suspiciously_perfect_win_rate"
    assert perfect["reasons"] == ("win rate 95% over 150 trades: real strategies do not win that often; check the "
                                  "backtest for look-ahead bias",)
    assert not by_hash.at[Seeded.hash(seeded.outliers["high_sharpe"]), "rejected"]  # no rule covers it


def test_evaluate_rules_warnings(seeded, verdicts):
    by_hash = verdicts.set_index("strategy_hash")
    short = {h for h, m in seeded.stored.items() if _window_days(m) < 14}
    warned = set(by_hash.index[by_hash["warned_by"].map(lambda w: "short_window" in w)])
    assert short and warned == short
    # A warn rule that returns False warns with its description; the strategy is stored unless a rule refuses.
    assert {dict(zip(w, t))["short_window"] for w, t in
            zip(by_hash.loc[sorted(short), "warned_by"], by_hash.loc[sorted(short), "warnings"])} == {
        "discovered over less than two weeks"}
    stored_with_warning = by_hash[~by_hash["rejected"] & (by_hash["warned_by"].str.len() > 0)]
    assert len(stored_with_warning) and (stored_with_warning["stage"] == "").all()
    drawdown = {h for h, m in seeded.stored.items()
                if m["performance_metrics"]["total_return"] > 0
                and -m["performance_metrics"]["max_drawdown"] > 3 * m["performance_metrics"]["total_return"]}
    assert set(by_hash.index[by_hash["warned_by"].map(lambda w: "drawdown_large_for_return" in w)]) == drawdown


def test_evaluate_rules_catalog_first(frame):
    rows = frame[frame["strategy_type"] == "MACD_CROSSOVER"].head(2).copy()
    rows.at[rows.index[0], "parameters"] = {"shortEmaPeriod": 40, "longEmaPeriod": 26, "signalPeriod": 9}
    got = rule_authoring.evaluate_rules(rows, [profit_factor_contradicts_return, short_window])  # sources are enough
    first = got.iloc[0]
    assert (first["stage"], first["rule"]) == ("validate", "parameters.range")
    assert "outside the catalog's range" in first["reason"] and first["warned_by"] == ()  # no rule ran on it
    summary = rule_authoring.rule_summary(got)
    assert (summary["evaluated"] == 1).all()  # the refused one is not counted as evaluated by the rules
    empty = rule_authoring.evaluate_rules(frame.iloc[:0], [short_window])
    assert empty.empty and list(empty.columns) == list(rule_authoring.VERDICT_COLUMNS)


def test_rule_summary_counts(seeded, verdicts, inspector):
    summary = rule_authoring.rule_summary(verdicts, inspector)
    assert list(summary.index) == inspector.rules  # every rule in force, in order, zeros included
    assert list(summary["severity"]) == ["reject", "reject", "reject", "warn", "reject", "warn", "reject"]
    assert summary.loc["profit_factor_contradicts_return", "description"] == (
        "a profit factor below 1 with a positive total return")
    assert (summary["evaluated"] == len(seeded.stored)).all()
    for name in summary.index:
        assert summary.loc[name, "rejected"] == verdicts["rejected_by"].map(lambda r: name in r).sum()
        assert summary.loc[name, "warned"] == verdicts["warned_by"].map(lambda w: name in w).sum()
        assert summary.loc[name, "first"] == (verdicts["stage"] == f"rule:{name}").sum()
        assert summary.loc[name, "share"] == pytest.approx(
            (summary.loc[name, "rejected"] + summary.loc[name, "warned"]) / len(seeded.stored))
    assert summary["first"].sum() == verdicts["rejected"].sum()
    assert summary.loc["raises_on_pivot", "rejected"] == sum(m["strategy_type"] == "PIVOT"
                                                             for m in seeded.stored.values())
    assert summary.loc["short_window", "rejected"] == 0 and summary.loc["short_window", "warned"] > 0
    bare = rule_authoring.rule_summary(verdicts)  # without the inspector: the rules that said something, busiest first
    totals = bare["rejected"] + bare["warned"]
    assert list(totals) == sorted(totals, reverse=True) and (totals > 0).all()
    assert bare.loc["short_window", "severity"] == "warn" and bare.loc["too_few_trades", "severity"] == "reject"


def test_rejections_by(seeded, verdicts):
    by_type = rule_authoring.rejections_by(verdicts)
    pairs = Counter((t, name) for t, names in zip(verdicts["strategy_type"], verdicts["rejected_by"]) for name in names)
    assert int(by_type.to_numpy().sum()) == sum(pairs.values())
    for (t, name), n in pairs.items():
        assert by_type.loc[t, name] == n
    assert list(by_type.sum(axis=1)) == sorted(by_type.sum(axis=1), reverse=True)
    assert list(by_type.sum()) == sorted(by_type.sum(), reverse=True)
    assert by_type.loc["PIVOT", "raises_on_pivot"] == sum(m["strategy_type"] == "PIVOT" for m in seeded.stored.values())
    warned = rule_authoring.rejections_by(verdicts, "symbol", warnings=True)
    assert set(warned.columns) == {"short_window", "drawdown_large_for_return"}
    assert int(warned.to_numpy().sum()) == int(verdicts["warned_by"].str.len().sum())
    nothing = rule_authoring.rejections_by(verdicts[~verdicts["rejected"]])
    assert nothing.empty


def test_write_rules_file_round_trips_through_the_service_loader(tmp_path, frame, verdicts):
    path = rule_authoring.write_rules_file([profit_factor_contradicts_return, short_window], tmp_path / "team" / "mine.py",
                                     docstring="Team rules.")
    assert path == (tmp_path / "team" / "mine.py").resolve() and path.is_file()
    text = path.read_text()
    assert text.startswith('"""Team rules."""\n\nfrom strategy_consumer.rules import rule\n')
    assert '@rule(description="a profit factor below 1 with a positive total return")\n' in text
    assert '@rule(severity="warn")\ndef short_window(s):\n' in text
    assert RuleSet.load([path]).names == ["profit_factor_contradicts_return", "short_window"]
    assert [p.name for p in path.parent.iterdir()] == ["mine.py"]  # no temporary file left behind
    # The file says what the functions said, through the same engine.
    from_file = rule_authoring.evaluate_rules(frame, StrategyInspector(rules=[path]))
    keep = {"profit_factor_contradicts_return", "short_window"}
    for column, names in (("rejected_by", "reasons"), ("warned_by", "warnings")):
        expected = [tuple(t for r, t in zip(rs, ts) if r in keep) for rs, ts in zip(verdicts[column], verdicts[names])]
        assert list(from_file[names]) == expected
    # A second write replaces the file.
    rule_authoring.write_rules_file(short_window, path)
    assert RuleSet.load([path]).names == ["short_window"]
    assert path.read_text().startswith('"""Analyst rules: short_window."""\n')


def test_write_rules_file_refuses_what_the_file_could_not_run(tmp_path):
    target = tmp_path / "r.py"
    with pytest.raises(ValueError, match="reads PF_LIMIT, which the file would not define"):
        rule_authoring.write_rules_file([reads_a_notebook_global], target)
    assert not target.exists()
    rule_authoring.write_rules_file([reads_a_notebook_global], target, preamble="PF_LIMIT = 1.0")
    assert RuleSet.load([target]).check(create_test_strategy()) == []
    with pytest.raises(ValueError, match="no @rule decorator"):
        rule_authoring.write_rules_file([rule(_plain)], tmp_path / "plain.py")
    with pytest.raises(TypeError, match="not a rule"):
        rule_authoring.write_rules_file([_plain], tmp_path / "plain.py")
    with pytest.raises(ValueError, match="must end in .py"):
        rule_authoring.write_rules_file([short_window], tmp_path / "rules.txt")
    with pytest.raises(ValueError, match="no rules"):
        rule_authoring.write_rules_file([], target)


def test_rules_directory(tmp_path):
    chosen = rule_authoring.rules_directory(environ={rule_authoring.RULES_DIR_VARIABLE: str(tmp_path / "a" / "b")})
    assert chosen == tmp_path / "a" / "b" and chosen.is_dir()
    assert rule_authoring.rules_directory(tmp_path / "c", environ={rule_authoring.RULES_DIR_VARIABLE: "/nowhere"}) == tmp_path / "c"
    fresh, other = rule_authoring.rules_directory(environ={}), rule_authoring.rules_directory(environ={})
    try:
        assert fresh.is_dir() and fresh != other and not list(fresh.iterdir())
        assert not fresh.is_relative_to(ROOT)
    finally:
        os.rmdir(fresh)
        os.rmdir(other)


def test_rules_command_line():
    assert rule_authoring.rules_command_line(["/etc/rules/a b.py", Path("examples/rules"), "team.rules"]) == (
        "strategy-consumer --rules '/etc/rules/a b.py' --rules examples/rules --rules team.rules")
    assert rule_authoring.rules_command_line([], binary="/opt/bin/strategy-consumer") == "/opt/bin/strategy-consumer"
    with pytest.raises(TypeError, match="write_rules_file"):
        rule_authoring.rules_command_line([short_window])
