"""The CPU path: strategy-bench-tool cpu, decode + validate + hash + encode on one thread, without a database."""

from __future__ import annotations

from pathlib import Path

from ..services import run_json


def phase_cpu(tool: str, message_file: Path, min_seconds: float) -> dict:
    return run_json([tool, "cpu", f"--input={message_file}", f"--min_seconds={min_seconds}"])
