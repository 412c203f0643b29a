"""StrategyInspector: the service's decoding and validation (and analyst rules), for scripts and notebooks."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Optional, Union

from . import _core
from ._json import Strategy, to_json

__all__ = ["StrategyInspector", "strategy_hash", "rule_sources"]

RuleSources = Union[str, "os.PathLike[str]", Iterable[Any]]


def rule_sources(rules: Optional[RuleSources]) -> list:
    """``rules=`` as a list of sources: one path or module name, or a list of paths, module names, modules and
    @rule functions."""
    if rules is None:
        return []
    if isinstance(rules, (str, os.PathLike)) or callable(rules) or hasattr(rules, "__file__"):
        return [rules]
    return list(rules)


def strategy_hash(symbol: str, strategy_type: str, parameters: Union[dict, str]) -> str:
    """The canonical strategy hash the service computes when a message carries none (README)."""
    return _core.strategy_hash(symbol, strategy_type, to_json(parameters))


class StrategyInspector:
    """Validates and analyses strategies exactly as the service does.

    Every method takes a strategy as a dict, as JSON text (str or bytes), or as the protobuf bytes of a
    ``discovery.DiscoveredStrategy`` (``strategy_consumer.protobuf.encode_strategy``). ``message_format``,
    ``parameters_layout`` and ``strategy_hash_scheme`` are the service's flags of the same names.

    ``rules``: analyst rules (strategy_consumer.rules) run after the catalog's validation, in this interpreter,
    through the same engine and evaluation as the service: a path, a module name, or a list of paths, module
    names, modules and @rule functions. A refusal by a rule is a reason with rule ``rule:<name>``.

    >>> inspector = StrategyInspector()
    >>> inspector.validate_strategy({"symbol": "BTC/USD", "strategy_type": "PIVOT",
    ...                              "parameters": {"period": 10}, "score": 1.0})
    True
    """

    def __init__(self, catalog: Optional[str] = None, *, allow_unknown_strategy_types: bool = False,
                 rules: Optional[RuleSources] = None, message_format: str = "auto",
                 parameters_layout: str = "named", strategy_hash_scheme: str = "canonical"):
        self._core = _core.StrategyInspector(str(catalog or ""), allow_unknown_strategy_types, message_format,
                                             parameters_layout, strategy_hash_scheme)
        sources = rule_sources(rules)
        # Outcomes are returned, not logged: a notebook checks thousands of strategies one by one.
        self._rules = _core.RuleEngine(sources, log_outcomes=False) if sources else None

    def validate(self, strategy: Strategy) -> list[dict]:
        """The reasons the strategy would be refused: ``[{rule, field, value, message}, ...]``; empty if valid."""
        if self._rules is None:
            return self._core.validate(to_json(strategy))
        return self._core.inspect(to_json(strategy), self._rules)[1]

    def inspect(self, strategy: Strategy) -> dict:
        """What the service would do with the message: ``{stage, reasons, strategy_hash, rule_warnings}``; stage
        is "" (stored), "decode", "validate" or "rule:<name>"; rule_warnings are ``[{rule, message}]``."""
        stage, reasons, hash_, warnings = self._core.inspect(to_json(strategy), self._rules)
        return {"stage": stage, "reasons": reasons, "strategy_hash": hash_, "rule_warnings": warnings}

    def decode(self, strategy: Strategy) -> dict:
        """The message decoded and validated (without rules): ``{stage, reasons, message_format, record}``;
        ``record`` is the row as it would be stored (None when decoding failed)."""
        return self._core.decode(to_json(strategy))

    @property
    def rules(self) -> list[str]:
        """The names of the analyst rules in force (empty without rules)."""
        return [] if self._rules is None else self._rules.names

    def rule_stats(self) -> dict:
        """Per-rule counters since the rules were loaded: ``{rules: [{name, evaluated, rejected, warned, errors,
        seconds, ...}], reloads, failed_reloads, last_reload_error, ...}``."""
        return {} if self._rules is None else self._rules.stats()

    def reload_rules(self) -> None:
        """Loads the rules again from their sources now; a broken version keeps the previous rules (see
        ``rule_stats()["last_reload_error"]``)."""
        if self._rules is not None:
            self._rules.request_reload()
            self._rules.reload_if_changed()

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
