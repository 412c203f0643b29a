"""PostgresClient: bulk inserts through the service's COPY + upsert path, and the queries analysts need."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Union

from . import _core
from ._json import Strategy, to_json

__all__ = ["PostgresClient", "BulkInsertResult", "to_dataframe"]


@dataclass
class BulkInsertResult:
    success_count: int
    failure_count: int
    inserted: int
    updated: int
    failures: list[dict] = field(default_factory=list)  # {index, stage, reasons: [{rule, field, value, message}]}


def to_dataframe(rows: Iterable[dict]):
    """Rows (as the query methods return them) as a pandas DataFrame; parameters and metrics stay dicts."""
    import pandas as pd

    return pd.DataFrame(list(rows))


def _micros(t: Optional[datetime]) -> Optional[int]:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class PostgresClient:
    """A thread-safe pool of connections to the strategies database.

    ``PostgresClient(host=..., port=..., database=..., user=..., password=...)``, or a libpq connection string /
    URI (``PostgresClient("postgresql://user@host:5432/tradestream")``), or a dict of those keywords. Calls
    release the GIL while they wait for the database. The schema migrations are applied before the first use
    unless ``migrate=False``. ``score_history=False`` keeps :meth:`bulk_insert_strategies` from appending to the
    score history (on by default, as in the service).
    """

    def __init__(self, dsn: Union[str, Mapping[str, Any], None] = None, *, host: Optional[str] = None,
                 port: Optional[int] = None, database: Optional[str] = None, user: Optional[str] = None,
                 password: Optional[str] = None, min_connections: Optional[int] = None,
                 max_connections: Optional[int] = None, username: Optional[str] = None,
                 catalog: Optional[str] = None, allow_unknown_strategy_types: bool = False, migrate: bool = True,
                 message_format: str = "auto", parameters_layout: str = "named",
                 strategy_hash_scheme: str = "canonical", score_history: Optional[bool] = None):
        keywords = dict(host=host, port=port, database=database, user=user or username, password=password,
                        min_connections=min_connections, max_connections=max_connections)
        if isinstance(dsn, Mapping):
            given = dict(dsn)
            if "username" in given:
                given.setdefault("user", given.pop("username"))
            if "dbname" in given:
                given.setdefault("database", given.pop("dbname"))
            keywords = {**{k: v for k, v in given.items() if k in keywords}, **{k: v for k, v in keywords.items() if v is not None}}
            dsn = None
        config = _core.PostgresConfig.from_dsn(dsn) if isinstance(dsn, str) else _core.PostgresConfig()
        for key, value in keywords.items():
            if value is not None:
                setattr(config, key, int(value) if key in ("port", "min_connections", "max_connections") else value)
        if score_history is not None:
            config.score_history = bool(score_history)
        self.config = config
        self._core = _core.PostgresClient(config, str(catalog or ""), allow_unknown_strategy_types, migrate,
                                          message_format, parameters_layout, strategy_hash_scheme)

    def __repr__(self) -> str:
        return f"PostgresClient({self.config.describe()})"

    def bulk_insert_strategies(self, strategies: Iterable[Strategy]) -> BulkInsertResult:
        """Validates and stores strategies (dicts, JSON text, or protobuf DiscoveredStrategy bytes) in one
        transaction, as the service would.

        Refused ones are in ``failures`` with their reasons; a strategy seen before is updated."""
        result = self._core.bulk_insert([to_json(s) for s in strategies])
        return BulkInsertResult(**result)

    def get_strategy(self, id_or_hash: Any) -> Optional[dict]:
        """One strategy by ``strategy_id`` (UUID or its text) or by ``strategy_hash``; None if absent."""
        rows = self._core.find(id_or_hash=str(id_or_hash), limit=1)
        return rows[0] if rows else None

    def get_strategies_by_type(self, strategy_type: str, *, limit: Optional[int] = None,
                               active_only: bool = False) -> list[dict]:
        return self._core.find(strategy_type=strategy_type, limit=limit, active_only=active_only)

    def get_strategies_by_symbol(self, symbol: str, *, limit: Optional[int] = None,
                                 min_score: Optional[float] = None, active_only: bool = True) -> list[dict]:
        """Best first. ``active_only`` is on by default, as in the original service."""
        return self._core.find(symbol=symbol, limit=limit, min_score=min_score, active_only=active_only)

    def top_strategies(self, n: int = 10, *, symbol: Optional[str] = None,
                       strategy_type: Optional[str] = None, active_only: bool = False) -> list[dict]:
        return self._core.find(symbol=symbol, strategy_type=strategy_type, limit=n, active_only=active_only)

    def count_strategies(self, *, symbol: Optional[str] = None, strategy_type: Optional[str] = None,
                         min_score: Optional[float] = None, active_only: bool = False) -> int:
        return self._core.count(symbol=symbol, strategy_type=strategy_type, min_score=min_score,
                                active_only=active_only)

    def get_strategy_count(self) -> int:
        """All stored strategies (the original service's name for count_strategies())."""
        return self.count_strategies()

    def get_score_history(self, strategy_hash: Optional[str] = None, *, strategy_type: Optional[str] = None,
                          symbol: Optional[str] = None, since: Optional[datetime] = None,
                          until: Optional[datetime] = None, limit: Optional[int] = None) -> list[dict]:
        """Rows of the score history (table ``strategy_score_history``), oldest first: one per applied discovery.

        Each dict has ``strategy_hash``, its strategy's ``strategy_type`` and ``symbol``, the message's own
        ``score``, ``performance_metrics``, ``discovery_symbol``, ``discovery_start_time``, ``discovery_end_time``
        and Kafka ``message_timestamp`` (None where the message had none), where it was read (``source_topic``,
        ``source_partition``, ``source_offset``; None for strategies stored by :meth:`bulk_insert_strategies`)
        and ``stored_at`` (the time of its batch's transaction). Every argument narrows the rows; ``since`` and
        ``until`` bound ``stored_at`` (``since <= stored_at < until``; a naive datetime is taken as UTC), so only
        the month partitions in that range are read.
        """
        return self._core.score_history(strategy_hash=strategy_hash, strategy_type=strategy_type, symbol=symbol,
                                        since_us=_micros(since), until_us=_micros(until), limit=limit)

    def migrate(self) -> None:
        """Applies the schema migrations (idempotent)."""
        self._core.migrate()

    @staticmethod
    def to_dataframe(rows: Iterable[dict]):
        return to_dataframe(rows)
