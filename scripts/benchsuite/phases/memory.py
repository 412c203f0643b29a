"""Peak RSS of strategy-consumer (the kernel's VmHWM, read while it runs): draining many ordinary messages
(memory), and draining large valid ones with PostgreSQL the bottleneck, against the byte budget (large)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..services import DLQ, Database, checkpoint, consumer_args
from ..workload import PARTITION_BYTES, check_topic_complete, fill_topic, large_messages, partitions_for

MEMORY_TOPIC = "bench-memory"
LARGE_TOPIC = "bench-large"
# What the consumer holds beyond --max_buffered_bytes (memory_budget.hpp): the process itself with its libraries
# (about 30 MB), librdkafka's queue of prefetched messages (queued.max.messages.kbytes: 32 MiB) and the fetch
# response that takes it over that (fetch.max.bytes: at most 8 MiB), one message over each budget, and what the
# allocator keeps of freed blocks.
LARGE_CONSTANT_MB = 112.0
LARGE_ROW_SECONDS = 0.1  # each row's insert in the large phase: the database, not Kafka, is the bottleneck


def phase_memory(pg: PostgresServer, tool: str, work: Path, messages: list[bytes], batch_size: int,
                 min_partitions: int) -> dict:
    partitions = partitions_for(messages, min_partitions)
    with DevBroker(topics={MEMORY_TOPIC: partitions, DLQ: 1}) as kafka:
        fill_topic(kafka.bootstrap, MEMORY_TOPIC, partitions, messages)
        check_topic_complete(kafka.bootstrap, MEMORY_TOPIC, partitions, len(messages))
        db = Database(pg, "bench_memory", tool)
        checkpoint(pg)
        args = consumer_args(kafka, pg, db.name, MEMORY_TOPIC, "bench-memory", batch_size,
                             "--idle_timeout_seconds=2", "--max_processing_time_seconds=3600")
        log_path = work / "memory-consumer.log"
        load = os.getloadavg()[0]
        start = time.time()
        hwm_kb, timeline, hwm_steps = run_watching_rss(args, log_path, start)
        end = db.last_commit("strategies", "strategy_consumer_offsets")
        return {"messages": len(messages), "partitions": partitions, "peak_rss_mb": hwm_kb / 1024.0,
                "seconds": end - start, "messages_per_second": len(messages) / (end - start),
                "stored": db.count(), "load_average_at_start": load,
                "rss_timeline_mb": timeline, "peak_growth_mb": hwm_steps}


def run_watching_rss(args: list[str], log_path: Path, start: float) -> tuple[int, list, list]:
    """Runs strategy-consumer to its exit, its stderr into log_path: (peak RSS in kB, RSS once a second, the
    moments the peak grew by 5 MB or more). Raises when it fails."""
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_file)
        hwm_kb, last_step_kb, timeline, hwm_steps, next_sample = 0, 0, [], [], start
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            # The kernel's high-water mark of the process's memory since exec (VmHWM), read every 20 ms until
            # it exits. Not ru_maxrss: for a child spawned with vfork (as subprocess does) that also counts
            # the RSS of this Python process before the exec.
            try:
                status_text = Path(f"/proc/{proc.pid}/status").read_text()
                hwm = int(re.search(r"VmHWM:\s+(\d+)", status_text).group(1))
                if hwm > last_step_kb + 5 * 1024:  # when the peak grew, by 5 MB or more
                    hwm_steps.append((round(time.time() - start, 2), round(hwm / 1024, 1)))
                    last_step_kb = hwm
                hwm_kb = max(hwm_kb, hwm)
                if time.time() >= next_sample:  # RSS once a second, to tell a plateau from growth
                    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status_text).group(1))
                    timeline.append((round(time.time() - start, 1), round(rss_kb / 1024, 1)))
                    next_sample += 1.0
            except (OSError, AttributeError):
                pass
            time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError("strategy-consumer failed:\n" + log_path.read_text(errors="replace")[-3000:])
    return hwm_kb, timeline, hwm_steps


def phase_large(pg: PostgresServer, tool: str, work: Path, n: int, size: int, budget_args: list[str],
                budget_mb: float) -> dict:
    """Peak RSS draining a topic of large valid messages, against --max_buffered_bytes plus LARGE_CONSTANT_MB,
    with PostgreSQL the bottleneck (every row inserted waits LARGE_ROW_SECONDS, as on a loaded server), so that
    the consumer reads faster than it writes: without a byte budget the open and in-flight batches held every
    message read until their batch was written (a backlog of 1 MiB messages needed gigabytes)."""
    messages = large_messages(n, size, seed=7)
    per_partition = max(1, PARTITION_BYTES // size)
    partitions = math.ceil(n / per_partition)
    with DevBroker(topics={LARGE_TOPIC: partitions, DLQ: 1}) as kafka:
        fill_topic(kafka.bootstrap, LARGE_TOPIC, partitions, messages, max_bytes=2 * size)
        check_topic_complete(kafka.bootstrap, LARGE_TOPIC, partitions, len(messages))
        total_mb = sum(len(m) for m in messages) / 2**20
        del messages
        db = Database(pg, "bench_large", tool)
        conn = pg.connect(db.name)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE FUNCTION bench_slow_row() RETURNS trigger AS $$ BEGIN"
                            f" PERFORM pg_sleep({LARGE_ROW_SECONDS}); RETURN NEW; END $$ LANGUAGE plpgsql")
                cur.execute("CREATE TRIGGER bench_slow_row BEFORE INSERT ON strategies FOR EACH ROW"
                            " EXECUTE FUNCTION bench_slow_row()")
        finally:
            conn.close()
        args = consumer_args(kafka, pg, db.name, LARGE_TOPIC, "bench-large", 1000,
                             "--idle_timeout_seconds=2", "--max_processing_time_seconds=3600", *budget_args)
        start = time.time()
        hwm_kb, timeline, hwm_steps = run_watching_rss(args, work / "large-consumer.log", start)
        stored = db.count()
        if stored != n:
            raise RuntimeError(f"large messages: {stored} of {n} stored")
        peak = hwm_kb / 1024.0
        return {"messages": n, "message_bytes": size, "topic_mb": round(total_mb, 1), "partitions": partitions,
                "budget_args": budget_args, "budget_mb": budget_mb, "constant_mb": LARGE_CONSTANT_MB,
                "row_seconds": LARGE_ROW_SECONDS,
                "peak_rss_mb": peak, "within_budget": peak <= budget_mb + LARGE_CONSTANT_MB,
                "seconds": time.time() - start, "stored": stored, "rss_timeline_mb": timeline,
                "peak_growth_mb": hwm_steps}
