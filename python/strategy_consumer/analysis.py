"""The stored strategies as pandas DataFrames: what the notebooks in ``notebooks/`` show, as functions.

:func:`load_strategies` runs one query through :class:`PostgresClient` and flattens each row (its parameters
become ``param_<name>`` columns, its performance metrics plain columns). Every other function is a pure function of
that frame (and of the strategy catalog), so scripts and tests can use them without a database::

    from strategy_consumer import analysis

    frame = analysis.load_strategies(analysis.client_from_environment())
    analysis.top_per_symbol(frame, 3)

Plots are left to the caller; :func:`axis_label` gives each column's label with its unit.

Trying analyst rules on these frames is :mod:`strategy_consumer.rule_authoring`. The score history (every applied
discovery, not only the latest) is read by :func:`load_score_history`, :func:`score_over_time` and
:func:`score_drift` (from :mod:`strategy_consumer.score_history`).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError
from .postgres_client import PostgresClient
from .score_history import HISTORY_COLUMNS, frame_from_history, load_score_history, score_drift, score_over_time
from .strategy_inspector import StrategyInspector

__all__ = [
    "HISTORY_COLUMNS",
    "METRIC_PAIRS",
    "OUTLIER_KINDS",
    "PARAMETER_PREFIX",
    "STANDARD_METRICS",
    "axis_label",
    "classify_warning",
    "client_from_environment",
    "counts_by_symbol_and_type",
    "discoveries_over_time",
    "flag_outliers",
    "frame_from_history",
    "frame_from_rows",
    "load_score_history",
    "load_strategies",
    "metric_pairs",
    "most_common_type",
    "outlier_counts",
    "parameter_heatmap",
    "parameter_landscape",
    "parameter_ranges",
    "score_distribution",
    "score_drift",
    "score_over_time",
    "score_samples",
    "top_per_symbol",
]

STANDARD_METRICS: tuple[str, ...] = ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "profit_factor",
                                     "total_trades", "avg_trade_duration")
"""The seven metrics of the message contract; each is a column of :func:`frame_from_rows` (NaN when absent)."""

PARAMETER_PREFIX = "param_"
"""Parameter ``p`` of a strategy is column ``param_p`` (NaN for types without it)."""

METRIC_PAIRS: tuple[tuple[str, str], ...] = (("max_drawdown", "sharpe_ratio"), ("total_trades", "win_rate"))
"""(x, y) pairs the parameter-landscape notebook plots: Sharpe ratio against drawdown, win rate against trades."""

OUTLIER_KINDS: dict[str, str] = {
    "invalid": "refused by the validator with today's catalog",
    "few_trades": "fewer than 30 trades: too few for the score to mean much",
    "high_win_rate": "win rate above 0.9 (overfitting or look-ahead?)",
    "high_sharpe": "Sharpe ratio above 4",
    "drawdown_exceeds_return": "max drawdown larger than the total return",
    "no_metrics": "no performance metrics",
    "parameter_at_edge": "a parameter on the edge of its search range (the optimum may lie outside it)",
    "other": "another warning of StrategyInspector.analyze_strategy",
}
"""What :func:`flag_outliers` reports, by kind. All but ``parameter_at_edge`` count as a metric outlier."""

_LABELS: dict[str, str] = {
    "current_score": "score (discovery's fitness, dimensionless)",
    "total_return": "total return (fraction of capital)",
    "sharpe_ratio": "Sharpe ratio (dimensionless)",
    "max_drawdown": "max drawdown (fraction of equity, a loss is negative)",
    "win_rate": "win rate (fraction of trades won)",
    "profit_factor": "profit factor (gross profit / gross loss)",
    "total_trades": "trades (count)",
    "avg_trade_duration": "average trade duration (as reported by discovery)",
    "discovery_window_days": "discovery window (days)",
}

_TIME_COLUMNS = ("discovery_start_time", "discovery_end_time", "first_discovered_at", "last_evaluated_at",
                 "created_at", "updated_at")
_BASE_COLUMNS = ("strategy_id", "symbol", "strategy_type", "family", "current_score", "is_active", "rediscovered",
                 "discovery_symbol", "discovery_start_time", "discovery_end_time", "discovery_window_days",
                 "first_discovered_at", "last_evaluated_at", "created_at", "updated_at", "strategy_hash")
_TOP_COLUMNS = ("strategy_type", "current_score", "sharpe_ratio", "win_rate", "max_drawdown", "total_trades",
                "parameters", "strategy_id")
_WARNING_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("parameter_at_edge", re.compile(r"sits on the edge of its search range")),
    ("few_trades", re.compile(r"^only \S+ trades")),
    ("high_win_rate", re.compile(r"^win rate .* suspiciously high")),
    ("high_sharpe", re.compile(r"^Sharpe ratio .* suspiciously high")),
    ("drawdown_exceeds_return", re.compile(r"^max drawdown .* larger than the total return")),
    ("no_metrics", re.compile(r"^no performance metrics")),
)


def axis_label(column: str) -> str:
    """A plot label with the unit for a column of :func:`frame_from_rows` (``param_period`` -> ``period (...)``)."""
    if column in _LABELS:
        return _LABELS[column]
    if column.startswith(PARAMETER_PREFIX):
        return f"{column[len(PARAMETER_PREFIX):]} (parameter value, catalog units)"
    return column


def client_from_environment(environ: Optional[Mapping[str, str]] = None, *, migrate: bool = False,
                            max_connections: Optional[int] = 2) -> PostgresClient:
    """A client for the database the POSTGRES_* variables name, with the service's defaults.

    POSTGRES_HOST (``localhost``), POSTGRES_PORT (``5432``), POSTGRES_DB (``tradestream``), POSTGRES_USER
    (``postgres``), POSTGRES_PASSWORD (empty). Analysis only reads, so the migrations are not applied unless
    ``migrate=True`` (an analyst's role need not be allowed to create tables).
    """
    env = os.environ if environ is None else environ
    port_text = env.get("POSTGRES_PORT") or "5432"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"POSTGRES_PORT={port_text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"POSTGRES_PORT={port} is outside 1..65535")
    return PostgresClient(host=env.get("POSTGRES_HOST") or "localhost", port=port,
                          database=env.get("POSTGRES_DB") or "tradestream", user=env.get("POSTGRES_USER") or "postgres",
                          password=env.get("POSTGRES_PASSWORD") or None, min_connections=1,
                          max_connections=max_connections, migrate=migrate)


def _catalog(inspector: Optional[StrategyInspector]) -> dict[str, dict]:
    return (inspector or StrategyInspector()).strategy_types


def frame_from_rows(rows: Iterable[Mapping[str, Any]], inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """Rows of :class:`PostgresClient` as one flat frame, in their order.

    Columns: the stored fields, ``family`` (from the catalog; None for an unknown type), ``rediscovered`` (stored
    again after its first discovery), ``discovery_window_days``, the seven :data:`STANDARD_METRICS` then any other
    metric, one ``param_<name>`` column per parameter name seen, and the original ``parameters`` and
    ``performance_metrics`` dicts. Times are UTC ``datetime64``.
    """
    rows = list(rows)
    catalog = _catalog(inspector)
    records = []
    metric_names: dict[str, None] = dict.fromkeys(STANDARD_METRICS)
    parameter_names: set[str] = set()
    for row in rows:
        record = {key: row.get(key) for key in _BASE_COLUMNS if key in row}
        spec = catalog.get(row.get("strategy_type") or "")
        record["family"] = spec["family"] if spec else None
        metrics = row.get("performance_metrics") or {}
        for name, value in metrics.items():
            metric_names.setdefault(name)
            record[name if name not in _BASE_COLUMNS else f"metric_{name}"] = value
        for name, value in (row.get("parameters") or {}).items():
            parameter_names.add(name)
            record[PARAMETER_PREFIX + name] = value
        record["parameters"] = row.get("parameters")
        record["performance_metrics"] = row.get("performance_metrics")
        records.append(record)
    metric_columns = [m if m not in _BASE_COLUMNS else f"metric_{m}" for m in metric_names]
    columns = [*_BASE_COLUMNS, *metric_columns, *(PARAMETER_PREFIX + p for p in sorted(parameter_names)),
               "parameters", "performance_metrics"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["rediscovered"] = frame["last_evaluated_at"] > frame["first_discovered_at"]
    frame["discovery_window_days"] = (frame["discovery_end_time"] - frame["discovery_start_time"]).dt.total_seconds() / 86400
    numeric = ["current_score", *metric_columns, *(PARAMETER_PREFIX + p for p in parameter_names)]
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def load_strategies(client: PostgresClient, symbol: Optional[str] = None, strategy_type: Optional[str] = None, *,
                    active_only: bool = False, limit: Optional[int] = None,
                    inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """The stored strategies (all, or of one symbol and/or type), best score first, as :func:`frame_from_rows`.

    Without ``limit`` it counts first, then fetches that many in one query.
    """
    n = limit if limit is not None else client.count_strategies(symbol=symbol, strategy_type=strategy_type,
                                                                 active_only=active_only)
    rows = client.top_strategies(n, symbol=symbol, strategy_type=strategy_type, active_only=active_only) if n > 0 else []
    return frame_from_rows(rows, inspector)


def counts_by_symbol_and_type(frame: pd.DataFrame, *, by: str = "strategy_type") -> pd.DataFrame:
    """Strategies per symbol (rows) and per type (columns; ``by="family"`` for families), zeros included."""
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="symbol"), columns=pd.Index([], name=by), dtype=int)
    counts = pd.crosstab(frame["symbol"], frame[by].fillna("(unknown)"))
    return counts.sort_index().sort_index(axis=1).astype(int)


def score_distribution(frame: pd.DataFrame, *, by: str = "strategy_type") -> pd.DataFrame:
    """Per type (or ``by`` another column): count, mean, std, min, p25, median, p75, max of the score; best median
    first."""
    stats = frame.groupby(by)["current_score"].describe()
    stats = stats.rename(columns={"25%": "p25", "50%": "median", "75%": "p75"})
    stats["count"] = stats["count"].astype(int)
    return stats.sort_values(["median", "mean"], ascending=False)


def score_samples(frame: pd.DataFrame, *, by: str = "strategy_type") -> dict[str, np.ndarray]:
    """The scores of each type (or ``by``), in :func:`score_distribution`'s order: what a box plot takes."""
    order = score_distribution(frame, by=by).index
    groups = {key: group["current_score"].to_numpy() for key, group in frame.groupby(by)}
    return {key: groups[key] for key in order}


def _parameters_text(parameters: Any, spec: Optional[dict]) -> str:
    if not isinstance(parameters, Mapping):
        return ""
    order = [p["name"] for p in spec["parameters"]] if spec else []
    names = [n for n in order if n in parameters] + sorted(n for n in parameters if n not in order)
    return ", ".join(f"{n}={parameters[n]}" for n in names)


def top_per_symbol(frame: pd.DataFrame, n: int = 5, *, columns: Sequence[str] = _TOP_COLUMNS,
                   inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """The ``n`` best-scored strategies of each symbol, indexed by (symbol, rank); rank 1 is the best.

    Ties are broken by ``strategy_hash`` so the table is stable; ``parameters`` becomes ``name=value`` text in the
    catalog's order.
    """
    ordered = frame.sort_values(["symbol", "current_score", "strategy_hash"], ascending=[True, False, True])
    top = ordered.groupby("symbol", sort=True).head(n).copy()
    top["rank"] = top.groupby("symbol").cumcount() + 1
    if "parameters" in columns:
        catalog = _catalog(inspector)
        top["parameters"] = [_parameters_text(p, catalog.get(t))
                             for p, t in zip(top["parameters"], top["strategy_type"])]
    return top.set_index(["symbol", "rank"])[list(columns)]


def discoveries_over_time(frame: pd.DataFrame, freq: str = "D", *, by: Optional[str] = None,
                          time_column: str = "discovery_end_time") -> pd.DataFrame:
    """Strategies per period (pandas offset alias: ``"D"``, ``"W"``, ``"H"``), one column per ``by`` value or
    one column ``strategies``; empty periods are 0.

    The time is the end of the discovery window by default. A re-discovered strategy is one row that carries its
    latest window, so it counts once, at its latest discovery; ``time_column="first_discovered_at"`` counts when
    strategies were first stored instead.
    """
    frame = frame[frame[time_column].notna()]
    if by is None:
        indicators = pd.DataFrame({"strategies": np.ones(len(frame), dtype=int)})
    else:
        indicators = pd.get_dummies(frame[by].fillna("(unknown)").to_numpy(), dtype=int)
        indicators = indicators.reindex(sorted(indicators.columns), axis=1)
    indicators.index = pd.DatetimeIndex(frame[time_column], name="period")
    counts = indicators.resample(freq).sum()
    counts.columns.name = by
    return counts.astype(int)


def parameter_ranges(strategy_type: str, inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """The catalog's entry of a type: one row per parameter (its order) with type, min, max, default and the
    frame ``column``. KeyError for a type the catalog lacks."""
    catalog = _catalog(inspector)
    if strategy_type not in catalog:
        raise KeyError(f"{strategy_type!r} is not in the strategy catalog")
    rows = [{"parameter": p["name"], "type": p["type"], "min": float(p["min"]), "max": float(p["max"]),
             "default": float(p["default"]), "column": PARAMETER_PREFIX + p["name"]}
            for p in catalog[strategy_type]["parameters"]]
    return pd.DataFrame(rows, columns=["parameter", "type", "min", "max", "default", "column"]).set_index("parameter")


def most_common_type(frame: pd.DataFrame, *, min_parameters: int = 2,
                     inspector: Optional[StrategyInspector] = None) -> str:
    """The type with the most stored strategies among those with at least ``min_parameters`` parameters (ties:
    alphabetical). ValueError when there is none."""
    catalog = _catalog(inspector)
    counts = frame["strategy_type"].value_counts()
    eligible = [(-int(count), name) for name, count in counts.items()
                if name in catalog and len(catalog[name]["parameters"]) >= min_parameters]
    if not eligible:
        raise ValueError(f"no stored strategy has a type with at least {min_parameters} parameters")
    return min(eligible)[1]


def parameter_landscape(frame: pd.DataFrame, strategy_type: str,
                        inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """Score against each parameter of one type, long: one row per (strategy, parameter) with the value, the
    catalog's min, max and default, ``position`` in the range (0 at min, 1 at max) and the score."""
    ranges = parameter_ranges(strategy_type, inspector)
    rows = frame[frame["strategy_type"] == strategy_type]
    parts = []
    for name, spec in ranges.iterrows():
        values = rows[spec["column"]] if spec["column"] in rows else pd.Series(np.nan, index=rows.index)
        width = spec["max"] - spec["min"]
        parts.append(pd.DataFrame({
            "strategy_id": rows["strategy_id"], "symbol": rows["symbol"], "parameter": name,
            "value": values.astype(float), "min": spec["min"], "max": spec["max"], "default": spec["default"],
            "position": (values - spec["min"]) / width if width > 0 else np.nan,
            "current_score": rows["current_score"]}))
    columns = ["strategy_id", "symbol", "parameter", "value", "min", "max", "default", "position", "current_score"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _bin_edges(spec: pd.Series, bins: int) -> np.ndarray:
    lo, hi = spec["min"], spec["max"]
    if spec["type"] == "INTEGER" and hi - lo + 1 <= bins:
        return np.arange(lo - 0.5, hi + 1.0, 1.0)  # one bin per integer value
    return np.linspace(lo, hi, bins + 1)


def parameter_heatmap(frame: pd.DataFrame, strategy_type: str, x: str, y: str, *, bins: int = 6,
                      value: str = "current_score", agg: str = "mean",
                      inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """``agg`` of ``value`` over a grid of two parameters spanning their catalog ranges: rows are ``y`` bins,
    columns ``x`` bins, both labelled by the bin centre, ascending; NaN where no strategy falls. An INTEGER range
    of at most ``bins`` values gets one bin per value."""
    ranges = parameter_ranges(strategy_type, inspector)
    for name in (x, y):
        if name not in ranges.index:
            raise KeyError(f"{strategy_type} has no parameter {name!r}: {list(ranges.index)}")
    rows = frame[frame["strategy_type"] == strategy_type]
    edges = {name: _bin_edges(ranges.loc[name], bins) for name in (x, y)}
    centres = {name: (e[:-1] + e[1:]) / 2 for name, e in edges.items()}
    data = pd.DataFrame({
        name: pd.cut(rows[ranges.loc[name, "column"]] if ranges.loc[name, "column"] in rows else [],
                     edges[name], labels=centres[name], include_lowest=True)
        for name in (x, y)})
    data[value] = rows[value].to_numpy() if len(rows) else []
    grid = data.groupby([y, x], observed=False)[value].agg(agg).unstack(x)
    grid = grid.reindex(index=centres[y], columns=centres[x])
    grid.index.name, grid.columns.name = y, x
    return grid.astype(float)


def metric_pairs(frame: pd.DataFrame, pairs: Sequence[tuple[str, str]] = METRIC_PAIRS) -> pd.DataFrame:
    """For each (x, y) pair of metrics: how many strategies have both, Pearson's r and Spearman's rho."""
    out = []
    for x, y in pairs:
        both = frame[[x, y]].dropna()
        pearson = both[x].corr(both[y]) if len(both) > 1 else math.nan
        spearman = both[x].rank().corr(both[y].rank()) if len(both) > 1 else math.nan
        out.append({"x": x, "y": y, "n": len(both), "pearson": pearson, "spearman": spearman})
    return pd.DataFrame(out, columns=["x", "y", "n", "pearson", "spearman"])


def classify_warning(warning: str) -> str:
    """The :data:`OUTLIER_KINDS` key of one warning of ``StrategyInspector.analyze_strategy``."""
    for kind, pattern in _WARNING_KINDS:
        if pattern.search(warning):
            return kind
    return "other"


def _as_message(row: pd.Series) -> dict:
    message: dict[str, Any] = {"symbol": row["symbol"], "strategy_type": row["strategy_type"],
                               "parameters": row["parameters"] if isinstance(row["parameters"], Mapping) else {},
                               "current_score": row["current_score"]}
    if isinstance(row.get("performance_metrics"), Mapping):
        message["performance_metrics"] = row["performance_metrics"]
    for key in ("discovery_symbol", "discovery_start_time", "discovery_end_time"):
        value = row.get(key)
        if value is not None and not pd.isna(value):
            message[key] = value
    return message


def flag_outliers(frame: pd.DataFrame, inspector: Optional[StrategyInspector] = None, *,
                  all_rows: bool = False) -> pd.DataFrame:
    """What StrategyInspector says about each stored strategy: the validator's reasons (a row stored under an
    older catalog may be refused today) and ``analyze_strategy``'s warnings, classified by :data:`OUTLIER_KINDS`.

    One row per strategy with at least one kind (every row with ``all_rows``), in the frame's order: key columns,
    ``kinds``, ``warnings`` and ``reasons`` (tuples), ``metric_outlier`` (a kind other than
    ``parameter_at_edge``) and one boolean column per kind (``outliers[outliers.few_trades]``).
    """
    inspector = inspector or StrategyInspector()
    out = []
    for _, row in frame.iterrows():
        report = inspector.analyze_strategy(_as_message(row))
        reasons = tuple(r["message"] for r in report.get("reasons", []))
        warnings = tuple(report.get("warnings", []))
        kinds = (("invalid",) if not report.get("valid", True) else ()) + tuple(classify_warning(w) for w in warnings)
        kinds = tuple(dict.fromkeys(kinds))
        if not kinds and not all_rows:
            continue
        out.append({"strategy_id": row["strategy_id"], "symbol": row["symbol"], "strategy_type": row["strategy_type"],
                    "current_score": row["current_score"],
                    **{m: row.get(m, math.nan) for m in ("sharpe_ratio", "max_drawdown", "total_return", "win_rate",
                                                         "total_trades")},
                    "kinds": kinds, "warnings": warnings, "reasons": reasons,
                    "metric_outlier": any(k != "parameter_at_edge" for k in kinds),
                    **{kind: kind in kinds for kind in OUTLIER_KINDS}})
    columns = ["strategy_id", "symbol", "strategy_type", "current_score", "sharpe_ratio", "max_drawdown",
               "total_return", "win_rate", "total_trades", "kinds", "warnings", "reasons", "metric_outlier",
               *OUTLIER_KINDS]
    result = pd.DataFrame(out, columns=columns)
    for column in ("metric_outlier", *OUTLIER_KINDS):
        result[column] = result[column].astype(bool)
    return result


def outlier_counts(outliers: pd.DataFrame) -> pd.DataFrame:
    """Strategies per outlier kind of :func:`flag_outliers`, most frequent first, with what the kind means."""
    counts = outliers["kinds"].explode().dropna().value_counts()
    table = pd.DataFrame({"strategies": counts.astype(int)})
    table["meaning"] = [OUTLIER_KINDS.get(k, "") for k in table.index]
    table.index.name = "kind"
    return table
