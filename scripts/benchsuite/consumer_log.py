"""strategy-consumer's log lines (JSON or text): parsed into (time, message), the moments and counts the phases
read off them, and a reader that collects a running consumer's lines."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z (\w+) (.*)$")


def parse_log_line(line: str):
    """(epoch seconds, message) of a strategy-consumer log line, JSON or text; (None, line) for anything else."""
    line = line.strip()
    stamp, message = None, line
    if line.startswith("{"):
        try:
            obj = json.loads(line)
            stamp, message = obj.get("time", "").rstrip("Z"), obj.get("message", "")
        except ValueError:
            pass
    elif m := TEXT_LINE.match(line):
        stamp, message = m.group(1), m.group(3)
    if not stamp:
        return None, message
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp(), message


def messages_of(lines: list[str]) -> list[tuple]:
    return [parse_log_line(line) for line in lines]


def first_time(parsed: list[tuple], prefix: str):
    return next((t for t, m in parsed if m.startswith(prefix)), None)


def batch_count(parsed: list[tuple]) -> int:
    return sum(1 for _, m in parsed if re.match(r"batch \d+: ", m))


def exit_summary(parsed: list[tuple]) -> str:
    found = [m for _, m in parsed if m.startswith("exiting (")]
    return found[-1] if found else ""


class LogReader(threading.Thread):
    """Collects a running process's stderr lines (and writes them to a file)."""

    def __init__(self, stream, path: Path):
        super().__init__(daemon=True)
        self.stream, self.path, self.lines = stream, path, []

    def run(self):
        with open(self.path, "w") as f:
            for line in self.stream:
                self.lines.append(line)
                f.write(line)

    def count(self, prefix: str) -> int:
        """Lines whose message starts with prefix."""
        return sum(1 for _, m in messages_of(list(self.lines)) if m.startswith(prefix))
