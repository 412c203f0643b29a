"""strategy_consumer: stores the trading strategies of the discovery pipeline from Kafka into PostgreSQL.

The C++ core (the same code as the ``strategy-consumer`` binary) is exposed as:

- :class:`StrategyInspector` (``strategy_consumer.strategy_inspector``): decoding and validation;
- :class:`PostgresClient` (``strategy_consumer.postgres_client``): bulk inserts and the analysts' queries;
- :class:`Consumer` (``strategy_consumer.consumer``): the Kafka-to-PostgreSQL pipeline itself;
- :func:`replay_dead_letters` (``strategy_consumer.replay``): the dead letters run through today's checks again.
"""

from __future__ import annotations

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "strategy_consumer's C++ module (_core) is not built: run scripts/build in the source tree, "
        "or install the package with `pip install --no-build-isolation .` "
        f"(original error: {exc})"
    ) from exc

from .consumer import Consumer
from .errors import ConfigError, DatabaseError, FencedError, KafkaError, StrategyConsumerError
from .postgres_client import BulkInsertResult, PostgresClient
from .replay import replay_dead_letters
from .strategy_inspector import StrategyInspector, strategy_hash

__version__: str = _core.__version__

__all__ = [
    "BulkInsertResult",
    "ConfigError",
    "Consumer",
    "DatabaseError",
    "FencedError",
    "KafkaError",
    "PostgresClient",
    "StrategyConsumerError",
    "StrategyInspector",
    "__version__",
    "replay_dead_letters",
    "strategy_hash",
]
