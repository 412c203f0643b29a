"""Analyst rules: plain Python checks that run after the built-in catalog validation, in the service itself.

A rules file is ordinary Python::

    from strategy_consumer.rules import rule

    @rule(description="a score from fewer than 30 trades is noise")
    def too_few_trades(s):
        trades = s.metric("total_trades")
        if trades is not None and trades < 30:
            return f"only {trades} trades"

A rule receives one :class:`Strategy` (read-only) and returns ``None`` or ``True`` to pass it, a reason string or
``False`` to refuse it. ``@rule(severity="warn")`` makes its refusals warnings (logged and counted, the strategy is
stored); ``@rule(batch=True)`` receives the list of a batch's strategies and returns one verdict per strategy.
A rule that raises refuses the strategy with the exception's text and counts an error (a ``warn`` rule's error is
a warning: warn rules never refuse anything).

The same evaluation, :meth:`RuleSet.evaluate`, runs in the ``strategy-consumer`` binary (its embedded
interpreter, once per batch), in ``strategy_consumer.Consumer(rules=...)`` and in
``StrategyInspector(rules=...)``. This module needs nothing but the standard library: the binary carries a copy
of it, compiled in.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
import sys
import traceback
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from time import perf_counter
from types import MappingProxyType, ModuleType
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional, Sequence, Union

__all__ = ["rule", "Rule", "RuleSet", "Strategy", "Issue", "RuleStat", "Evaluation", "RuleLoadError",
           "load_rule_set", "SEVERITIES"]

SEVERITIES = ("reject", "warn")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_MAX_MESSAGE = 500  # characters of a reason kept (the dead letter and the log line carry it)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class RuleLoadError(ValueError):
    """A rules source could not be loaded: ``source: what is wrong`` (with FILE:LINE for code errors)."""

    def __init__(self, message: str, source: str = ""):
        super().__init__(message)
        self.source = source


# ---- the strategy a rule sees ----

class Strategy(NamedTuple):
    """One decoded, catalog-valid strategy, read-only. ``parameters`` and ``performance_metrics`` are read-only
    mappings (``performance_metrics`` is None when the message had none); times are UTC."""

    symbol: str
    strategy_type: str
    parameters: Mapping[str, Any]
    score: float
    performance_metrics: Optional[Mapping[str, Any]]
    discovery_symbol: Optional[str]
    discovery_start_us: Optional[int]  # microseconds since the Unix epoch
    discovery_end_us: Optional[int]
    strategy_hash: str

    def metric(self, name: str, default: Any = None) -> Any:
        """``performance_metrics[name]``, or ``default`` when there are no metrics or it is absent or null."""
        metrics = self.performance_metrics
        if metrics is None:
            return default
        value = metrics.get(name)
        return default if value is None else value

    def parameter(self, name: str, default: Any = None) -> Any:
        return self.parameters.get(name, default)

    @property
    def current_score(self) -> float:
        return self.score

    @property
    def discovery_start_time(self) -> Optional[datetime]:
        return None if self.discovery_start_us is None else _EPOCH + timedelta(microseconds=self.discovery_start_us)

    @property
    def discovery_end_time(self) -> Optional[datetime]:
        return None if self.discovery_end_us is None else _EPOCH + timedelta(microseconds=self.discovery_end_us)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Strategy":
        """From the record dict the core hands over (the fields above; times in microseconds)."""
        return _view(record)

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> "Strategy":
        """From a message dict as published (``score`` or ``current_score``, RFC 3339 times), unvalidated: for
        trying rules out. The service itself builds strategies from what its decoder read."""
        score = message.get("score", message.get("current_score"))
        metrics = message.get("performance_metrics")

        def micros(text: Optional[str]) -> Optional[int]:
            if text is None:
                return None
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (t - _EPOCH) // timedelta(microseconds=1)

        return cls(str(message["symbol"]), str(message["strategy_type"]),
                   MappingProxyType(dict(message.get("parameters") or {})), float(score),
                   None if metrics is None else MappingProxyType(dict(metrics)), message.get("discovery_symbol"),
                   micros(message.get("discovery_start_time")), micros(message.get("discovery_end_time")),
                   str(message.get("strategy_hash") or ""))


def _view(d: Mapping[str, Any], _new=tuple.__new__, _proxy=MappingProxyType, _cls=Strategy) -> Strategy:
    metrics = d["performance_metrics"]
    return _new(_cls, (d["symbol"], d["strategy_type"], _proxy(d["parameters"]), d["score"],
                       None if metrics is None else _proxy(metrics), d["discovery_symbol"],
                       d["discovery_start_us"], d["discovery_end_us"], d["strategy_hash"]))


# ---- rules ----

class Rule:
    """A function marked with :func:`rule`. Calling it calls the function."""

    def __init__(self, func: Callable, name: str, description: str, severity: str, batch: bool):
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name
        self.description = description
        self.severity = severity
        self.batch = batch

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        kind = ", batch" if self.batch else ""
        return f"<rule {self.name} ({self.severity}{kind})>"


def rule(func: Optional[Callable] = None, /, *, name: Optional[str] = None, description: Optional[str] = None,
         severity: str = "reject", batch: bool = False) -> Any:
    """Marks a function as a rule: ``@rule``, or ``@rule(name=, description=, severity="reject"|"warn",
    batch=False)``. The name (default: the function's) is the dead letter's stage ``rule:<name>``; the
    description (default: the docstring's first line) is the reason when the rule just returns False."""
    if severity not in SEVERITIES:
        raise ValueError(f"@rule: severity must be 'reject' or 'warn', not {severity!r}")

    def mark(f: Callable) -> Rule:
        if not callable(f):
            raise TypeError(f"@rule must decorate a function, not {type(f).__name__}")
        rule_name = name if name is not None else getattr(f, "__name__", "")
        if not isinstance(rule_name, str) or not _NAME.fullmatch(rule_name):
            raise ValueError(f"@rule: name {rule_name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        doc = (getattr(f, "__doc__", None) or "").strip().splitlines()
        text = description if description is not None else (doc[0].strip() if doc else "")
        return Rule(f, rule_name, text, severity, bool(batch))

    return mark(func) if func is not None else mark


# ---- evaluation ----

class Issue(NamedTuple):
    """What one rule said about one strategy that is not a pass."""

    index: int      # position of the strategy in the evaluated list
    rule: str
    severity: str   # the effect: "reject" (the strategy is refused) or "warn"
    message: str
    error: bool     # the rule raised (or returned something that is not a verdict)


class RuleStat(NamedTuple):
    rule: str
    evaluated: int
    rejected: int   # refusals by verdict
    warned: int     # warnings by verdict
    errors: int     # raised or returned a non-verdict (refuses for a reject rule, warns for a warn rule)
    seconds: float


class Evaluation(NamedTuple):
    issues: list  # of Issue, by rule then by strategy
    stats: list   # of RuleStat, one per rule

    def rejections(self, index: int) -> list:
        return [i for i in self.issues if i.index == index and i.severity == "reject"]

    def warnings(self, index: int) -> list:
        return [i for i in self.issues if i.index == index and i.severity == "warn"]


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + "..."


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].filename != __file__:
        where = frames[-1]
        text += f" (at {os.path.basename(where.filename)}:{where.lineno} in {where.name})"
    return _cut(text)


class _NotAVerdict(TypeError):
    pass


def _reason(rule: Rule, verdict: Any) -> Optional[str]:
    """None for a pass, else the reason text. Raises _NotAVerdict for anything else."""
    if verdict is None or verdict is True:
        return None
    if verdict is False or (isinstance(verdict, str) and not verdict.strip()):
        return rule.description or f"{'flagged' if rule.severity == 'warn' else 'refused'} by rule {rule.name}"
    if isinstance(verdict, str):
        return _cut(verdict)
    raise _NotAVerdict(f"rule returned {type(verdict).__name__}; expected None, True, False or a reason string")


class RuleSet:
    """The rules of some sources, in order. ``RuleSet.load(["rules.py", "team.rules"])``."""

    def __init__(self, rules: Sequence[Rule] = (), sources: Sequence[Any] = (), files: Sequence[str] = ()):
        seen: dict[str, Rule] = {}
        for r in rules:
            if r.name in seen and seen[r.name] is not r:
                raise RuleLoadError(f"two rules are named {r.name!r}: rule names must be unique")
            seen[r.name] = r
        self.rules: tuple = tuple(seen.values())
        self.sources: tuple = tuple(sources)
        self.files: tuple = tuple(files)  # what to watch for changes (hot reload)

    @classmethod
    def load(cls, sources: Iterable[Union[str, os.PathLike, ModuleType, Rule]]) -> "RuleSet":
        """Loads every rule of each source: a ``.py`` file, a directory (its ``*.py`` files not starting with
        ``_``, in name order), an importable module name, a module object or a :class:`Rule`. Files are read
        and compiled afresh each time (no bytecode cache); a module already imported is reloaded. Raises
        :class:`RuleLoadError`."""
        sources = list(sources)
        rules: list[Rule] = []
        files: list[str] = []
        for source in sources:
            found, watched = _load_source(source)
            rules += found
            files += watched
        return cls(rules, sources, files)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({[r.name for r in self.rules]})"

    @property
    def names(self) -> list:
        return [r.name for r in self.rules]

    def evaluate(self, strategies: Sequence[Union[Strategy, Mapping[str, Any]]]) -> Evaluation:
        """Runs every rule over the strategies (Strategy views, or record dicts as the core hands over)."""
        views = [s if isinstance(s, Strategy) else _view(s) for s in strategies]
        issues: list = []
        stats: list = []
        n = len(views)
        for r in self.rules:
            started = perf_counter()
            rejected = warned = errors = 0
            warn = r.severity == "warn"
            effect = r.severity
            if r.batch:
                try:
                    verdicts = list(r.func(list(views)))
                    if len(verdicts) != n:
                        raise _NotAVerdict(f"batch rule returned {len(verdicts)} verdict(s) for {n} strategies")
                except (Exception, SystemExit) as exc:
                    text = _error_text(exc)
                    issues += [Issue(i, r.name, effect, text, True) for i in range(n)]
                    errors = n
                    verdicts = ()
                for i, verdict in enumerate(verdicts):
                    try:
                        text = _reason(r, verdict)
                    except _NotAVerdict as exc:
                        issues.append(Issue(i, r.name, effect, _error_text(exc), True))
                        errors += 1
                        continue
                    if text is not None:
                        issues.append(Issue(i, r.name, effect, text, False))
                        if warn:
                            warned += 1
                        else:
                            rejected += 1
            else:
                f = r.func
                for i, view in enumerate(views):
                    try:
                        verdict = f(view)
                        if verdict is None or verdict is True:
                            continue
                        text = _reason(r, verdict)
                    except (Exception, SystemExit) as exc:
                        issues.append(Issue(i, r.name, effect, _error_text(exc), True))
                        errors += 1
                        continue
                    issues.append(Issue(i, r.name, effect, text, False))
                    if warn:
                        warned += 1
                    else:
                        rejected += 1
            stats.append(RuleStat(r.name, n, rejected, warned, errors, perf_counter() - started))
        return Evaluation(issues, stats)

    def check(self, strategy: Union[Strategy, Mapping[str, Any]]) -> list:
        """The issues of one strategy (a Strategy, a record dict or a message dict)."""
        if not isinstance(strategy, Strategy):
            strategy = _view(strategy) if "discovery_start_us" in strategy else Strategy.from_message(strategy)
        return self.evaluate([strategy]).issues


def load_rule_set(sources: Iterable[Any]) -> RuleSet:
    """What the C++ engine calls: :meth:`RuleSet.load`."""
    return RuleSet.load(sources)


# ---- loading ----

def _rules_of(module: ModuleType, label: str) -> list:
    found: list = []
    for value in list(vars(module).values()):
        if isinstance(value, Rule) and not any(value is f for f in found):
            found.append(value)
    if not found:
        raise RuleLoadError(f"{label}: defines no rules (mark functions with @rule)", label)
    return found


def _module_file(module: ModuleType) -> list:
    file = getattr(module, "__file__", None)
    return [os.path.abspath(file)] if file and os.path.exists(file) else []


def _load_source(source: Any) -> tuple:
    if isinstance(source, Rule):
        return [source], []
    if isinstance(source, ModuleType):
        return _rules_of(_reload_module(source, source.__name__), source.__name__), _module_file(source)
    if not isinstance(source, (str, os.PathLike)):
        raise RuleLoadError(f"{source!r}: a rules source is a file, a directory, a module name, a module or a "
                            f"@rule function")
    text = os.fspath(source)
    looks_like_path = text.endswith(".py") or os.sep in text or os.path.exists(text) or not text
    if not looks_like_path and _MODULE_NAME.fullmatch(text):
        module = _import_module(text)
        return _rules_of(module, text), _module_file(module)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if not files:
            raise RuleLoadError(f"{text}: a directory without rule files (*.py)", text)
        rules: list = []
        for f in files:
            rules += _rules_of(_load_file(f), str(f))
        # The directory too: a file added or removed changes its mtime.
        return rules, [os.path.abspath(path)] + [os.path.abspath(f) for f in files]
    if not path.is_file():
        raise RuleLoadError(f"{text}: no such file, and not an importable module name", text)
    module = _load_file(path)
    try:
        return _rules_of(module, text), [os.path.abspath(path)]
    except RuleLoadError:
        sys.modules.pop(module.__name__, None)
        raise


def _where(exc: BaseException, filename: str) -> str:
    """FILE:LINE of the deepest frame of the traceback in `filename` (else of the deepest frame)."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename or filename}:{exc.lineno or 0}"
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(filename)]
    frame = (inside or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame else filename


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _load_file(path: Path) -> ModuleType:
    """Runs a rules file as a module of its own, compiled from its current text."""
    absolute = os.path.abspath(path)
    digest = hashlib.sha1(absolute.encode()).hexdigest()[:10]
    name = f"_strategy_rules_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise RuleLoadError(f"{path}: cannot read: {exc.strerror or exc}", str(path)) from None
    module = types.ModuleType(name)
    module.__file__ = absolute
    previous = sys.modules.get(name)
    sys.modules[name] = module  # while it runs: dataclasses and the like look themselves up there
    try:
        code = compile(source, absolute, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        if previous is not None:
            sys.modules[name] = previous
        else:
            sys.modules.pop(name, None)
        raise RuleLoadError(f"{_where(exc, absolute)}: {_describe(exc)}", str(path)) from None
    return module


def _import_module(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return _reload_module(module, name)
    try:
        return importlib.import_module(name)
    except (Exception, SystemExit) as exc:
        file = getattr(exc, "filename", None) or ""
        where = _where(exc, file) + ": " if isinstance(exc, SyntaxError) or file else ""
        raise RuleLoadError(f"{name}: cannot import: {where}{_describe(exc)}", name) from None


def _reload_module(module: ModuleType, name: str) -> ModuleType:
    try:
        return importlib.reload(module)
    except (Exception, SystemExit) as exc:
        file = getattr(module, "__file__", "") or ""
        raise RuleLoadError(f"{name}: cannot reload: {_where(exc, file)}: {_describe(exc)}", name) from None
