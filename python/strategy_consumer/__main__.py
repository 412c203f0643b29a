"""python -m strategy_consumer: the service, with the same flags and environment as the binary."""

from __future__ import annotations

import signal
import sys
import threading

from . import _core
from .errors import ConfigError, StrategyConsumerError


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(_core.help_text(), end="")
        return 0
    import os

    try:
        consumer = _core.Consumer(argv, dict(os.environ))
    except ConfigError as exc:
        print(f"strategy-consumer: {exc}", file=sys.stderr)
        return 2
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["reason"] = consumer.run()
        except StrategyConsumerError as exc:
            outcome["error"] = exc

    # The pipeline runs in a thread so that this (main) thread can take SIGTERM/SIGINT and stop it.
    worker = threading.Thread(target=work, name="strategy-consumer")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: consumer.stop())
    if consumer.rules is not None:  # as the binary: SIGHUP reloads the rules between batches
        signal.signal(signal.SIGHUP, lambda *_: consumer.rules.request_reload())
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if "error" in outcome:
        print(f"strategy-consumer: {outcome['error']}", file=sys.stderr)
        return 2 if isinstance(outcome["error"], ConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
