"""The exceptions of strategy_consumer. The C++ core's errors arrive as these (bindings/bind_errors.cpp)."""

from __future__ import annotations

from typing import Optional

__all__ = ["StrategyConsumerError", "ConfigError", "DatabaseError", "FencedError", "KafkaError"]


class StrategyConsumerError(Exception):
    """Root of every error this package raises. ``retryable``: whether trying again can help."""

    retryable: bool = False
    remedy: str = ""


class ConfigError(ValueError, StrategyConsumerError):
    """A setting, flag, file or connection string is wrong."""


class DatabaseError(StrategyConsumerError):
    """PostgreSQL failed; ``sqlstate`` is the server's SQLSTATE when it sent one."""

    sqlstate: Optional[str] = None


class FencedError(DatabaseError):
    """Another consumer of the group owns the partition now; the batch was abandoned."""


class KafkaError(StrategyConsumerError):
    """Kafka failed; ``topic`` and ``partition`` say where, when known."""

    topic: Optional[str] = None
    partition: Optional[int] = None
