"""The score history as pandas DataFrames: how each strategy's score moved over its re-discoveries.

The service appends one row to ``strategy_score_history`` for every discovery it applies (README, "Score
history"); :meth:`PostgresClient.get_score_history` reads them. :func:`load_score_history` makes a flat frame of
those rows; :func:`score_over_time` and :func:`score_drift` are pure functions of that frame::

    from strategy_consumer import analysis

    history = analysis.load_score_history(analysis.client_from_environment())
    analysis.score_over_time(history, "3f2a...")      # one strategy, row by row
    analysis.score_drift(history)                       # per strategy type and month

:mod:`strategy_consumer.analysis` exports all of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from .postgres_client import PostgresClient

__all__ = ["HISTORY_COLUMNS", "frame_from_history", "load_score_history", "score_drift", "score_over_time"]

_METRICS = ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "profit_factor", "total_trades",
            "avg_trade_duration")
_TIMES = ("at", "stored_at", "message_timestamp", "discovery_start_time", "discovery_end_time")

HISTORY_COLUMNS: tuple[str, ...] = (
    "strategy_hash", "strategy_type", "symbol", "score", "at", "stored_at", "message_timestamp",
    "discovery_symbol", "discovery_start_time", "discovery_end_time", "source_topic", "source_partition",
    "source_offset", *_METRICS, "performance_metrics")
"""The columns of :func:`frame_from_history`, in order. ``at`` is when the discovery was made: the end of its
discovery window, else its Kafka timestamp, else when it was stored."""


def frame_from_history(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """History rows (as :meth:`PostgresClient.get_score_history` returns them) as one flat frame, ordered by
    ``at`` (then by when stored and the source offset).

    Columns: :data:`HISTORY_COLUMNS`; the seven standard metrics are float columns (NaN when the message had no
    metrics), times are UTC ``datetime64``.
    """
    records = []
    for row in rows:
        record = {key: row.get(key) for key in HISTORY_COLUMNS if key != "at" and key not in _METRICS}
        metrics = row.get("performance_metrics") or {}
        for name in _METRICS:
            record[name] = metrics.get(name)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=[c for c in HISTORY_COLUMNS if c != "at"])
    for column in _TIMES[1:]:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame.insert(HISTORY_COLUMNS.index("at"), "at",
                 frame["discovery_end_time"].fillna(frame["message_timestamp"]).fillna(frame["stored_at"]))
    for column in ("score", *_METRICS):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("source_partition", "source_offset"):
        frame[column] = frame[column].astype("Int64")
    return frame.sort_values(["at", "stored_at", "source_offset"], kind="stable").reset_index(drop=True)


def load_score_history(client: PostgresClient, strategy_hash: Optional[str] = None, *,
                       strategy_type: Optional[str] = None, symbol: Optional[str] = None,
                       since: Optional[datetime] = None, until: Optional[datetime] = None) -> pd.DataFrame:
    """The score history (all of it, or of one strategy, type or symbol; ``since``/``until`` bound when the rows
    were stored) as :func:`frame_from_history`."""
    rows = client.get_score_history(strategy_hash, strategy_type=strategy_type, symbol=symbol, since=since,
                                    until=until)
    return frame_from_history(rows)


def score_over_time(history: pd.DataFrame, strategy_hash: str) -> pd.DataFrame:
    """One strategy's score over time: its rows of ``history`` (a :func:`frame_from_history` frame) in order, with
    ``change``, the score minus the one before (NaN for its first discovery).

    Columns: ``at``, ``score``, ``change``, ``stored_at``, the source position and the standard metrics. Empty
    when the strategy has no history (the score history was off, or its rows were dropped by retention).
    """
    columns = ["at", "score", "change", "stored_at", "message_timestamp", "source_topic", "source_partition",
               "source_offset", *_METRICS]
    rows = history[history["strategy_hash"] == strategy_hash].copy()
    rows["change"] = rows["score"].diff()
    return rows[columns].reset_index(drop=True)


def score_drift(history: pd.DataFrame, freq: str = "M", *, by: str = "strategy_type") -> pd.DataFrame:
    """How scores drift per strategy type (or ``by="symbol"``) and period of ``at`` (``freq``: a pandas period
    alias, ``"M"`` months, ``"W"`` weeks, ``"D"`` days).

    One row per group and period that has discoveries, in group then period order, with:

    - ``discoveries``: history rows; ``strategies``: distinct strategies among them;
    - ``mean_score``: their mean score; ``change``: ``mean_score`` minus the group's previous period's (NaN for
      its first), which mixes new strategies in;
    - ``rediscoveries`` and ``mean_rediscovery_change``: the rows that re-discover a strategy seen before (in the
      history, in any period) and the mean of their score minus that strategy's previous score: how the same
      strategies' scores move, free of the mix (NaN when there were none).
    """
    columns = [by, "period", "discoveries", "strategies", "mean_score", "change", "rediscoveries",
               "mean_rediscovery_change"]
    if history.empty:
        return pd.DataFrame(columns=columns)
    frame = history.sort_values(["at", "stored_at", "source_offset"], kind="stable").copy()
    frame["rediscovery_change"] = frame.groupby("strategy_hash", sort=False)["score"].diff()
    frame["period"] = frame["at"].dt.tz_convert(None).dt.to_period(freq)
    frame[by] = frame[by].fillna("(unknown)")
    grouped = frame.groupby([by, "period"], sort=True)
    out = pd.DataFrame({
        "discoveries": grouped.size(),
        "strategies": grouped["strategy_hash"].nunique(),
        "mean_score": grouped["score"].mean(),
        "rediscoveries": grouped["rediscovery_change"].count(),
        "mean_rediscovery_change": grouped["rediscovery_change"].mean(),
    }).reset_index()
    out["change"] = out.groupby(by, sort=False)["mean_score"].diff()
    out["mean_rediscovery_change"] = out["mean_rediscovery_change"].astype(float).where(out["rediscoveries"] > 0,
                                                                                        np.nan)
    return out[columns]
