"""The score history's cost: strategy-consumer drains the pre-filled throughput topic with --score_history=false
and =true, alternately, each into an empty database (README: Score history)."""

from __future__ import annotations

from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..services import log
from .drain import phase_consumer


def phase_history(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, messages: int, batch_size: int,
                  partitions: int, pairs: int) -> dict:
    """Off, on, then on, off, ... (`pairs` of each), so that a load that drifts during the phase weighs on both
    alike. The figure is the steady state (after the first commit); the whole runs are in the details."""
    runs: dict[str, list] = {"off": [], "on": []}
    for i in range(pairs):
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            log(f"  history {mode} ({i + 1} of {pairs})")
            runs[mode].append(phase_consumer(pg, kafka, tool, work, messages, batch_size, partitions,
                                             name=f"history_{mode}_{i}",
                                             extra_args=(f"--score_history={'true' if mode == 'on' else 'false'}",)))

    def mean(mode: str, key: str) -> float:
        return sum(r[key] for r in runs[mode]) / len(runs[mode])

    off, on = (mean(m, "messages_per_second_after_first_row") for m in ("off", "on"))
    whole_off, whole_on = (mean(m, "messages_per_second") for m in ("off", "on"))
    return {"pairs": pairs, "off_messages_per_second": off, "on_messages_per_second": on, "cost": 1 - on / off,
            "whole_run_cost": 1 - whole_on / whole_off, "history_rows": runs["on"][0]["history_rows"],
            "history_rows_off": runs["off"][0]["history_rows"], "runs": runs}
