"""StrategyInspector: the service's decoding and validation, for scripts and notebooks."""

from __future__ import annotations

import json
from typing import Optional, Union

from . import _core
from ._json import Strategy, to_json

__all__ = ["StrategyInspector", "strategy_hash"]


def strategy_hash(symbol: str, strategy_type: str, parameters: Union[dict, str]) -> str:
    """The canonical strategy hash the service computes when a message carries none (README)."""
    return _core.strategy_hash(symbol, strategy_type, to_json(parameters))


class StrategyInspector:
    """Validates and analyses strategies exactly as the service does.

    Every method takes a strategy as a dict or as JSON text (str or bytes).

    >>> inspector = StrategyInspector()
    >>> inspector.validate_strategy({"symbol": "BTC/USD", "strategy_type": "PIVOT",
    ...                              "parameters": {"period": 10}, "score": 1.0})
    True
    """

    def __init__(self, catalog: Optional[str] = None, *, allow_unknown_strategy_types: bool = False):
        self._core = _core.StrategyInspector(str(catalog or ""), allow_unknown_strategy_types)

    def validate(self, strategy: Strategy) -> list[dict]:
        """The reasons the strategy would be refused: ``[{rule, field, value, message}, ...]``; empty if valid."""
        return self._core.validate(to_json(strategy))

    def validate_strategy(self, strategy: Strategy) -> bool:
        return not self.validate(strategy)

    def validate_parameters(self, parameters: Union[dict, str], strategy_type: Optional[str] = None) -> bool:
        """Whether the parameters fit the type's catalog entry (without a type: some type with exactly
        these parameter names). ``parameter_reasons`` gives the why."""
        return not self.parameter_reasons(parameters, strategy_type)

    def parameter_reasons(self, parameters: Union[dict, str], strategy_type: Optional[str] = None) -> list[dict]:
        text = parameters if isinstance(parameters, str) else json.dumps(parameters, allow_nan=True)
        return self._core.validate_parameters(text, strategy_type)

    def analyze_strategy(self, strategy: Strategy) -> dict:
        """Type, family, where each parameter sits in its catalog range, metrics and warnings."""
        return self._core.analyze_strategy(to_json(strategy))

    def extract_performance_metrics(self, strategy: Strategy) -> dict:
        """The seven standard metrics (None when absent), then any other metrics of the strategy."""
        return self._core.extract_performance_metrics(to_json(strategy))

    @property
    def strategy_types(self) -> dict:
        """The catalog: ``{type: {family, parameter_message, parameters: [{name, type, min, max, default}]}}``."""
        return self._core.strategy_types
