"""Replaying dead letters: ``strategy-consumer replay-dead-letters`` from Python.

After a fix to a rule, the catalog or a flag, the strategies refused before sit in the dead-letter topic.
:func:`replay_dead_letters` runs each selected letter's original message through today's decoding, validation and
rules and stores what passes now, exactly as the service would (one transaction per batch, the replay group's
offsets of the dead-letter topic stored with the rows: run it again and nothing is stored twice). With
``dry_run=True`` nothing is stored: each batch is written and rolled back, and only the report comes back.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Optional, Union

from . import _core
from .consumer import config_to_args
from .strategy_inspector import RuleSources, rule_sources

__all__ = ["replay_dead_letters", "replay_summary", "still_failing"]

_Many = Union[None, str, int, Iterable[Union[str, int]]]


def _listed(value: _Many) -> Optional[list]:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        return [value]
    return list(value)


def replay_dead_letters(*, dry_run: bool = False, stage: _Many = None, rule: _Many = None,
                        source_partition: _Many = None, from_offset: Optional[int] = None,
                        to_offset: Optional[int] = None, since: Optional[str] = None, until: Optional[str] = None,
                        rules: Optional[RuleSources] = None, env: Optional[Mapping[str, str]] = None,
                        **config: Any) -> dict:
    """Replays the dead-letter topic (``dlq_topic``) and returns the report.

    Filters (each narrows the selection): ``stage`` ("decode", "validate", "rule:<name>", "rule" for every
    rule, "database"), ``rule`` (a rule id among the letter's reasons), ``source_partition``, ``from_offset`` and
    ``to_offset`` (the original's offset, inclusive), ``since`` and ``until`` (RFC 3339: when the letter was
    written). ``rules``: analyst rules to apply now (as :class:`Consumer`'s), besides any ``rules=`` flag.
    Other keyword arguments are the binary's flags without dashes (``kafka_bootstrap_servers=...``,
    ``replay_group_id=...``); the POSTGRES_*/KAFKA_* environment fills what they leave out.

    The report: ``replayed``, ``passed`` (stored now, or would be with ``dry_run``), ``still_failing``,
    ``not_replayable`` (letters whose original was cut to fit, or left out), ``filtered_out``, ``unreadable``,
    ``rows`` (inserted, updated, outdated) and ``stages``: per stage that refused the letters, how many were
    replayed and passed, and ``still_failing`` as {stage now: {rule id: count}}.
    Raises what ended the replay (ConfigError, DatabaseError, KafkaError).
    """
    flags: dict[str, Any] = {"dry_run": dry_run, "stage": _listed(stage), "rule": _listed(rule),
                             "source_partition": _listed(source_partition), "from_offset": from_offset,
                             "to_offset": to_offset, "since": since, "until": until}
    args = ["replay-dead-letters", *config_to_args({**flags, **config})]
    if not any(a.startswith("--http_port") for a in args):
        args.append("--http_port=0")
    core = _core.Consumer(args, dict(os.environ if env is None else env), rule_sources(rules))
    core.run()
    report = core.replay_report
    assert report is not None  # built with the replay command
    return json.loads(report)


def replay_summary(report: Mapping[str, Any]):
    """The report per stage that refused the letters, as a DataFrame indexed by stage: ``letters``,
    ``replayed``, ``passed``, ``still_failing``, ``not_replayable`` (counts), best ``passed`` first."""
    import pandas as pd

    rows = []
    for stage, s in report.get("stages", {}).items():
        failing = sum(n for by_rule in s["still_failing"].values() for n in by_rule.values())
        rows.append({"stage": stage, "letters": s["letters"], "replayed": s["replayed"], "passed": s["passed"],
                     "still_failing": failing, "not_replayable": sum(s["not_replayable"].values())})
    columns = ["letters", "replayed", "passed", "still_failing", "not_replayable"]
    frame = pd.DataFrame(rows, columns=["stage", *columns]).set_index("stage")
    return frame.sort_values(["passed", "letters"], ascending=False)


def still_failing(report: Mapping[str, Any]):
    """Why the replayed letters that do not pass still fail: one row per (stage then, stage now, rule id) with
    its ``count``, most first."""
    import pandas as pd

    rows = [{"stage_then": then, "stage_now": now, "rule": rule, "count": n}
            for then, s in report.get("stages", {}).items()
            for now, by_rule in s["still_failing"].items()
            for rule, n in by_rule.items()]
    frame = pd.DataFrame(rows, columns=["stage_then", "stage_now", "rule", "count"])
    return frame.sort_values("count", ascending=False, ignore_index=True)
