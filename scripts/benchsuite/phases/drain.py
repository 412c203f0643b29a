"""Draining the pre-filled throughput topic into an empty database: strategy-consumer (process start to its last
commit, and its steady state after the first commit) and the original Python design on the same topic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..consumer_log import batch_count, exit_summary, first_time, messages_of
from ..services import ROOT, Database, checkpoint, consumer_args, run_json
from ..workload import TOPIC


def phase_consumer(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, messages: int, batch_size: int,
                   partitions: int, name: str = "consumer", extra_args: tuple = (), topic: str = TOPIC) -> dict:
    db = Database(pg, f"bench_{name}", tool)
    checkpoint(pg)
    args = consumer_args(kafka, pg, db.name, topic, f"bench-{name}", batch_size, "--idle_timeout_seconds=2",
                         "--max_processing_time_seconds=3600", *extra_args)
    log_path = work / f"{name}.log"
    load = os.getloadavg()[0]
    start = time.time()
    with open(log_path, "w") as log_file:
        result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=log_file)
    lines = log_path.read_text(errors="replace").splitlines()
    if result.returncode != 0:
        raise RuntimeError("strategy-consumer failed:\n" + "\n".join(lines[-30:]))
    end = db.last_commit("strategies", "strategy_consumer_offsets")
    stored_offsets = db.query("SELECT coalesce(sum(next_offset), 0) FROM strategy_consumer_offsets")[0][0]
    if stored_offsets != messages:
        raise RuntimeError(f"strategy-consumer stored offsets for {stored_offsets} of {messages} messages")
    parsed = messages_of(lines)
    assigned = first_time(parsed, "assigned ")
    first_batch = first_time(parsed, "batch 1: ")
    # The first batch committed (with several writers not necessarily batch 1): the steady state starts there.
    first_commit = next(((t, int(m.group(1))) for t, text in parsed
                         if t is not None and (m := re.match(r"batch \d+: (\d+) message", text))), None)
    seconds = end - start
    return {"seconds": seconds, "messages_per_second": messages / seconds, "stored": db.count(),
            "partitions": partitions,
            "join_seconds": (assigned - start) if assigned else None,
            "first_batch_seconds": (first_batch - start) if first_batch else None,
            "messages_per_second_after_assignment": messages / (end - assigned) if assigned else None,
            "first_commit_seconds": (first_commit[0] - start) if first_commit else None,
            "messages_per_second_after_first_row":
                (messages - first_commit[1]) / (end - first_commit[0]) if first_commit else None,
            "batches": batch_count(parsed), "summary": exit_summary(parsed), "load_average_at_start": load,
            "history_rows": db.query("SELECT count(*) FROM strategy_score_history")[0][0]}


def phase_original(pg: PostgresServer, kafka: DevBroker, tool: str, messages: int) -> dict:
    db = Database(pg, "bench_original", tool)
    checkpoint(pg)
    load = os.getloadavg()[0]
    start = time.time()
    result = run_json([sys.executable, str(ROOT / "benchmarks" / "original_design.py"),
                       f"--bootstrap={kafka.bootstrap}", f"--topic={TOPIC}", "--group=bench-original",
                       f"--dsn={pg.dsn(db.name)}", f"--messages={messages}"])
    end = db.last_commit("strategies")
    seconds = end - start
    return {"seconds": seconds, "messages_per_second": messages / seconds, "stored": db.count(),
            "stored_statements": result["stored"], "skipped": result["skipped"], "load_average_at_start": load}
