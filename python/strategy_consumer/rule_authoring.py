"""Analyst rules tried on the stored strategies: what the service would do with each today, and rules saved for it.

:func:`evaluate_rules` runs the catalog's validation and the rules over a frame of
:func:`strategy_consumer.analysis.load_strategies` (the verdict frame), :func:`rule_summary` and
:func:`rejections_by` sum it up, :func:`write_rules_file` saves rules written in a notebook into
:func:`rules_directory`, and :func:`rules_command_line` is the ``strategy-consumer --rules ...`` that loads them::

    from strategy_consumer import analysis, rule_authoring

    frame = analysis.load_strategies(analysis.client_from_environment())
    verdicts = rule_authoring.evaluate_rules(frame, StrategyInspector(rules=["examples/rules"]))
"""

from __future__ import annotations

import builtins
import dis
import inspect
import math
import os
import shlex
import tempfile
import textwrap
import types
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pandas as pd

from .analysis import _as_message
from .rules import Rule, RuleSet
from .strategy_inspector import StrategyInspector

__all__ = [
    "RULES_DIR_VARIABLE",
    "VERDICT_COLUMNS",
    "evaluate_rules",
    "example_rules_path",
    "rejections_by",
    "rule_summary",
    "rules_command_line",
    "rules_directory",
    "write_rules_file",
]

RULES_DIR_VARIABLE = "STRATEGY_CONSUMER_RULES_DIR"
"""The environment variable naming where :func:`rules_directory` puts rules files (else a new temporary
directory)."""

VERDICT_COLUMNS: tuple[str, ...] = (
    "strategy_id", "strategy_hash", "symbol", "strategy_type", "current_score", "stage", "rule", "reason",
    "rejected", "rejected_by", "reasons", "warned_by", "warnings")
"""The columns of :func:`evaluate_rules`."""

_RULE_STAGE = "rule:"


def _rule_name(name: str) -> str:
    return name[len(_RULE_STAGE):] if name.startswith(_RULE_STAGE) else name


def evaluate_rules(frame: pd.DataFrame, inspector: Union[StrategyInspector, Any]) -> pd.DataFrame:
    """What the service would do today with each stored strategy of ``frame`` (:func:`load_strategies`): the
    catalog's validation, then the analyst rules, through ``StrategyInspector.inspect`` (the service's engine
    and evaluation, one strategy at a time, so a batch rule sees a batch of one).

    ``inspector``: a ``StrategyInspector(rules=...)``, or the rule sources to build one from (a path, a module
    name, or a list of paths, module names, modules and @rule functions). Each strategy goes in as stored, with
    its stored ``strategy_hash``.

    One row per strategy, in the frame's order, with :data:`VERDICT_COLUMNS`: ``stage`` as the service reports
    it ("" stored, "validate" refused by today's catalog, so no rule ran, or "rule:<name>" of the first refusing
    rule: the dead letter's stage), ``rule`` and ``reason`` (the first refusal's rule, without "rule:", and its
    reason; "" when stored), ``rejected``; ``rejected_by`` and ``reasons`` (every refusal, as tuples in rule
    order: a strategy may break several rules), ``warned_by`` and ``warnings`` (the ``warn`` rules' verdicts). A
    rule that raised refuses (a ``warn`` rule: warns) with the exception's text as the reason.
    """
    if not isinstance(inspector, StrategyInspector):
        inspector = StrategyInspector(rules=inspector)
    out = []
    for _, row in frame.iterrows():
        message = _as_message(row)
        if isinstance(row.get("strategy_hash"), str) and row["strategy_hash"]:
            message["strategy_hash"] = row["strategy_hash"]
        verdict = inspector.inspect(message)
        reasons = verdict["reasons"]
        warnings = verdict["rule_warnings"]
        out.append({"strategy_id": row.get("strategy_id"), "strategy_hash": verdict["strategy_hash"],
                    "symbol": row["symbol"], "strategy_type": row["strategy_type"],
                    "current_score": row["current_score"], "stage": verdict["stage"],
                    "rule": _rule_name(reasons[0]["rule"]) if reasons else "",
                    "reason": reasons[0]["message"] if reasons else "", "rejected": bool(verdict["stage"]),
                    "rejected_by": tuple(_rule_name(r["rule"]) for r in reasons),
                    "reasons": tuple(r["message"] for r in reasons),
                    "warned_by": tuple(_rule_name(w["rule"]) for w in warnings),
                    "warnings": tuple(w["message"] for w in warnings)})
    verdicts = pd.DataFrame(out, columns=list(VERDICT_COLUMNS))
    verdicts["rejected"] = verdicts["rejected"].astype(bool)
    return verdicts


def rule_summary(verdicts: pd.DataFrame, inspector: Optional[StrategyInspector] = None) -> pd.DataFrame:
    """Per analyst rule, from :func:`evaluate_rules`'s verdicts: ``evaluated`` (strategies the rules ran on: those
    today's catalog accepts), ``rejected`` (strategies it refused), ``first`` (of those, how many it is the
    dead letter's stage of: the first refusing rule), ``warned`` and ``share`` (fraction of ``evaluated`` it
    refused or warned about).

    With the ``inspector`` that made the verdicts, every rule in force is a row, in its order, zeros included,
    with its ``severity`` and ``description``; without it, the rules that said something, busiest first.
    Validator refusals ("validate" stage) are not rules here.
    """
    ran = verdicts[~verdicts["stage"].isin(("decode", "validate"))]
    rejected = ran["rejected_by"].explode().dropna().value_counts()
    first = ran.loc[ran["rejected"], "rule"].value_counts()
    warned = ran["warned_by"].explode().dropna().value_counts()
    if inspector is not None:
        meta = {r["name"]: r for r in inspector.rule_stats().get("rules", [])}
        names = list(meta)
    else:
        meta = {}
        totals = rejected.add(warned, fill_value=0)
        names = sorted(totals.index, key=lambda n: (-totals[n], n))
    table = pd.DataFrame(index=pd.Index(names, name="rule"))
    table["severity"] = [meta[n]["severity"] if n in meta else ("warn" if n in warned else "reject") for n in names]
    table["description"] = [meta.get(n, {}).get("description", "") for n in names]
    table["evaluated"] = len(ran)
    table["rejected"] = rejected.reindex(names, fill_value=0).astype(int)
    table["first"] = first.reindex(names, fill_value=0).astype(int)
    table["warned"] = warned.reindex(names, fill_value=0).astype(int)
    table["share"] = (table["rejected"] + table["warned"]) / len(ran) if len(ran) else math.nan
    return table


def rejections_by(verdicts: pd.DataFrame, by: str = "strategy_type", *, warnings: bool = False) -> pd.DataFrame:
    """Refusals per ``by`` value (rows: ``strategy_type``, ``symbol``, ...) and per rule (columns), every refusing
    rule of a strategy counted (``warnings=True``: the warnings instead); the rows with the most first, rows
    without any left out. What a stacked bar chart takes."""
    names, values = ("warned_by", "warnings") if warnings else ("rejected_by", "reasons")
    pairs = verdicts[[by, names]].explode(names).dropna(subset=[names])
    if pairs.empty:
        return pd.DataFrame(index=pd.Index([], name=by), columns=pd.Index([], name="rule"), dtype=int)
    table = pd.crosstab(pairs[by], pairs[names]).astype(int)
    table.columns.name = "rule"
    order = table.sum(axis=1).sort_values(ascending=False, kind="stable").index
    return table.loc[order, sorted(table.columns, key=lambda c: (-table[c].sum(), c))]


def example_rules_path() -> Path:
    """``examples/rules`` of the source tree: next to the package when it runs from the source tree
    (``PYTHONPATH=python``), else in the working directory or one of its parents (a notebook in ``notebooks/``).
    FileNotFoundError when neither has it."""
    here = Path(__file__).resolve().parents[2]
    cwd = Path.cwd().resolve()
    for base in (here, cwd, *cwd.parents):
        candidate = base / "examples" / "rules"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("examples/rules not found next to the package or above the working directory: "
                            "pass its path instead (it is in the source tree)")


def rules_directory(path: Union[str, os.PathLike, None] = None, environ: Optional[Mapping[str, str]] = None) -> Path:
    """Where to save rules files: ``path``, else ``$STRATEGY_CONSUMER_RULES_DIR``, else a new temporary
    directory; created if missing."""
    env = os.environ if environ is None else environ
    chosen = path or env.get(RULES_DIR_VARIABLE)
    if not chosen:
        return Path(tempfile.mkdtemp(prefix="strategy-rules-"))
    directory = Path(chosen).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


def _globals_read(code: types.CodeType) -> set[str]:
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals_read(const)
    return names


def _rule_source(r: Rule) -> str:
    try:
        text = textwrap.dedent(inspect.getsource(r.func))
    except (OSError, TypeError) as exc:
        raise ValueError(f"rule {r.name}: its source is not available ({exc}); define it in a file or a "
                         "notebook cell") from None
    if not text.lstrip().startswith("@"):
        raise ValueError(f"rule {r.name}: its source has no @rule decorator, so the file would define no rule; "
                         "write it as @rule(...) above the def")
    return text.rstrip() + "\n"


def write_rules_file(rules: Union[Rule, Sequence[Rule]], path: Union[str, os.PathLike], *, preamble: str = "",
                     docstring: Optional[str] = None) -> Path:
    """Saves @rule functions (defined in a notebook or anywhere with source) as a rules file the service loads
    (``strategy-consumer --rules FILE``): a docstring, ``from strategy_consumer.rules import rule``, ``preamble``
    (imports and constants the rules use), then each rule's source as written, decorator included.

    Checked before anything is written: every global name a rule reads must be a builtin, ``rule`` or defined
    by ``preamble`` (ValueError naming the others: they exist only where the rule was defined). The file is
    replaced atomically (the service hot-reloads a changed file), then loaded back with ``RuleSet.load``, which
    must find exactly these rules. Returns the absolute path.
    """
    rules = [rules] if isinstance(rules, Rule) else list(rules)
    if not rules:
        raise ValueError("no rules to write")
    for r in rules:
        if not isinstance(r, Rule):
            raise TypeError(f"{r!r} is not a rule: mark the function with @rule")
    path = Path(path).expanduser().resolve()
    if path.suffix != ".py":
        raise ValueError(f"{path}: a rules file must end in .py")
    header = docstring or f"Analyst rules: {', '.join(r.name for r in rules)}."
    header = header.replace("\\", "\\\\").replace('"""', "'''").strip()
    header += "\n" if "\n" in header else ""  # a multi-line docstring closes on a line of its own
    parts = ['"""' + header + '"""\n\nfrom strategy_consumer.rules import rule\n']
    if preamble.strip():
        parts.append(textwrap.dedent(preamble).strip() + "\n")
    head = "\n".join(parts)
    namespace: dict[str, Any] = {}
    exec(compile(head, str(path), "exec", dont_inherit=True), namespace)
    for r in rules:
        missing = sorted(n for n in _globals_read(r.func.__code__) if n not in namespace and not hasattr(builtins, n))
        if missing:
            raise ValueError(f"rule {r.name} reads {', '.join(missing)}, which the file would not define: "
                             f"define them inside the rule or pass them in preamble=")
    text = head + "".join("\n\n" + _rule_source(r) for r in rules)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    loaded = RuleSet.load([path]).names
    if loaded != [r.name for r in rules]:
        raise ValueError(f"{path}: loads rules {loaded}, not {[r.name for r in rules]}")
    return path


def rules_command_line(sources: Iterable[Union[str, os.PathLike]], binary: str = "strategy-consumer") -> str:
    """The service's command line loading these rules files, directories or module names (shell-quoted); the
    other flags come from the environment or are added after it."""
    words = [binary]
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"{source!r}: the service loads files, directories and module names, not "
                            f"{type(source).__name__} objects; save rules with write_rules_file first")
        words += ["--rules", os.fspath(source)]
    return shlex.join(words)
