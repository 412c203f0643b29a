"""python -m strategy_consumer: the service, with the same flags and environment as the binary (and its
replay-dead-letters command, whose report goes to stdout as the binary's does).

The C++ Service does everything the binary does (logging and redaction, /health, /ready and /metrics, the
pipeline, the exit code); this module only takes the signals, which Python delivers to its main thread.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from . import _core
from .errors import ConfigError


def main(argv: list[str]) -> int:
    command = argv[0] if argv and argv[0] == "replay-dead-letters" else ""
    if "--help" in argv or "-h" in argv:
        print(_core.help_text(command), end="")
        return _core.EXIT_OK
    try:
        consumer = _core.Consumer(argv, dict(os.environ))
    except ConfigError as exc:
        print(f"strategy-consumer: {exc}", file=sys.stderr)
        return _core.EXIT_BAD_CONFIG
    outcome: dict = {}
    # The service runs in a thread so that this (main) thread can take SIGTERM/SIGINT/SIGHUP.
    worker = threading.Thread(target=lambda: outcome.update(code=consumer.serve()), name="strategy-consumer")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: consumer.stop())
    if consumer.rules is not None:  # as the binary: SIGHUP reloads the rules between batches
        signal.signal(signal.SIGHUP, lambda *_: consumer.rules.request_reload())
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    code = outcome.get("code", _core.EXIT_FAILED)
    if consumer.replay_report is not None and code == _core.EXIT_OK:
        print(consumer.replay_report)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
