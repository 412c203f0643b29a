"""Consumer: the service's pipeline, run from Python with the binary's flags and environment."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

from . import _core
from .strategy_inspector import RuleSources, rule_sources

__all__ = ["Consumer", "config_to_args"]


def config_to_args(config: Mapping[str, Any]) -> list[str]:
    """``{"batch_size": 100, "no_migrate": True, "kafka_property": ["a=b"]}`` as the binary's flags."""
    args: list[str] = []
    for key, value in config.items():
        flag = "--" + key.lstrip("-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [f"{flag}={v}" for v in value]
        elif isinstance(value, Mapping):  # kafka_property={"session.timeout.ms": 6000}
            args += [f"{flag}={k}={v}" for k, v in value.items()]
        else:
            args.append(f"{flag}={value}")
    return args


class Consumer:
    """``Consumer(kafka_bootstrap_servers=..., postgres_host=..., batch_size=500)``: keyword arguments are the
    binary's flags without dashes; the POSTGRES_*/KAFKA_* environment fills what they leave out.

    ``run()`` consumes until ``stop()`` (from another thread) or, in drain mode, until idle; it releases the GIL
    while it works. ``run_until_idle(seconds)`` is drain mode without a flag.

    ``rules``: analyst rules (strategy_consumer.rules; paths, module names, modules or @rule functions) run in
    this interpreter, besides any ``--rules`` flag: the pipeline takes the GIL once per batch to run them.
    """

    def __init__(self, *, env: Optional[Mapping[str, str]] = None, args: Optional[Sequence[str]] = None,
                 rules: Optional[RuleSources] = None, **config: Any):
        self._args = list(args or []) + config_to_args(config)
        # A library object serves /health, /ready and /metrics only when asked (http_port=...): the binary's
        # default port 8080 would collide between consumers of one process. python -m strategy_consumer serves
        # on the binary's default.
        if not any(a.startswith("--http_port") for a in self._args):
            self._args.append("--http_port=0")
        self._env = dict(os.environ if env is None else env)
        self._rules = rule_sources(rules)
        self._core = _core.Consumer(self._args, self._env, self._rules)

    def run(self) -> str:
        """Returns why it ended: "stopped", "idle" or "time_limit"."""
        return self._core.run()

    def run_until_idle(self, idle_seconds: float = 1.0) -> str:
        """Consumes until caught up and idle for ``idle_seconds``."""
        drained = _core.Consumer(self._args + [f"--idle_timeout_seconds={idle_seconds}"], self._env, self._rules)
        self._core = drained
        return drained.run()

    def stop(self) -> None:
        self._core.stop()

    @property
    def counters(self) -> dict:
        """messages, stored_new, stored_updated, outdated, duplicate_in_batch, dead_lettered, batches, ..."""
        return self._core.counters

    @property
    def healthy(self) -> bool:
        return self._core.healthy

    @property
    def http_port(self) -> int:
        """The port of /health, /ready and /metrics while run() runs, when built with ``http_port=N``; else 0."""
        return self._core.http_port

    @property
    def rule_stats(self) -> dict:
        """Per-rule counters (evaluated, rejected, warned, errors, seconds) and reloads; {} without rules."""
        engine = self._core.rules
        return {} if engine is None else engine.stats()

    def reload_rules(self) -> None:
        """Reload the rules between the next two batches (what SIGHUP does to the binary). Any thread."""
        engine = self._core.rules
        if engine is not None:
            engine.request_reload()
