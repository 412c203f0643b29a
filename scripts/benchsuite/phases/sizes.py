"""The drain at several sizes (issue 17): the discovery pipeline's distinct strategies (no re-discoveries), at
least 64 partitions, --batch_size=5000, a new group, process start to the last commit, against the psql limit on
the same rows; for each of SIZES messages, REPEATS times alternately (the limit, then the consumer, each into a
new database), since one drain of a few seconds on a shared machine swings by a tenth or more between runs. Each
ratio reported is the median of the runs' ratios, the first committed row the slowest run's; every run's figures
are in the details. The dev broker keeps about 5 MiB a partition, so a size that does not fit in 64 partitions
gets as many as it needs (1,000,000 messages: 116)."""

from __future__ import annotations

import statistics
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..services import DLQ, Database, log, sink_statements
from ..workload import check_topic_complete, fill_topic, partitions_for, valid_messages, write_message_file
from .drain import phase_consumer
from .limit import limit_script, phase_rows, run_psql

SIZES = (100_000, 200_000, 1_000_000)
ISSUE_WORKLOAD_SIZE = 200_000  # issue 17's own workload, where its steady-state target applies
QUICK_SIZES = (2_000, 4_000)
REPEATS = 3  # --quick: 1
BATCH_SIZE = 5000
MIN_PARTITIONS = 64


def phase_sizes(pg: PostgresServer, tool: str, work: Path, sizes: tuple, seed: int,
                repeats: int = REPEATS) -> dict:
    out: dict = {"batch_size": BATCH_SIZE, "repeats": repeats, "runs": {}}
    with DevBroker(topics={DLQ: 1}) as kafka:
        for n in sizes:
            messages = valid_messages(n, seed + n, rediscover_ratio=0.0)
            run_dir = work / f"sizes-{n}"
            run_dir.mkdir()
            message_file = run_dir / "messages.bin"
            write_message_file(message_file, messages)
            rows = phase_rows(tool, message_file, run_dir, BATCH_SIZE)
            partitions = partitions_for(messages, MIN_PARTITIONS)
            topic = f"sizes-{n}"
            kafka.create_topic(topic, partitions)
            fill_topic(kafka.bootstrap, topic, partitions, messages)
            check_topic_complete(kafka.bootstrap, topic, partitions, n)
            del messages
            each = [drain_against_limit(pg, kafka, tool, run_dir, rows, n, partitions, topic, i)
                    for i in range(repeats)]
            # The steady state needs batches after the first: none for a size of a batch or two.
            after_first = [r["after_first_commit_over_limit"] for r in each]
            out["runs"][str(n)] = {
                "messages": n, "partitions": partitions, "each": each,
                "limit_messages_per_second": statistics.median(r["limit_messages_per_second"] for r in each),
                "consumer_messages_per_second": statistics.median(r["consumer_messages_per_second"] for r in each),
                "consumer_over_limit": statistics.median(r["consumer_over_limit"] for r in each),
                "first_commit_seconds": max(r["first_commit_seconds"] for r in each),
                "after_first_commit_over_limit":
                    statistics.median(after_first) if n >= 10 * BATCH_SIZE and None not in after_first else None,
            }
    return out


def drain_against_limit(pg: PostgresServer, kafka: DevBroker, tool: str, run_dir: Path, rows: dict, n: int,
                        partitions: int, topic: str, i: int) -> dict:
    """One run at one size: the limit, then the consumer on the topic with a new group, each into a new database."""
    limit = run_psql(pg, Database(pg, f"bench_sizes_limit_{n}_{i}", tool),
                     limit_script(sink_statements(tool), rows["files"]), run_dir / "limit.sql", n)
    # Without the score history: the limit writes none (the history phase measures its cost).
    consumer = phase_consumer(pg, kafka, tool, run_dir, n, BATCH_SIZE, partitions, name=f"sizes_{n}_{i}",
                              extra_args=("--score_history=false",), topic=topic)
    after = consumer["messages_per_second_after_first_row"]
    run = {"limit_messages_per_second": limit["messages_per_second"],
           "consumer_messages_per_second": consumer["messages_per_second"],
           "consumer_over_limit": consumer["messages_per_second"] / limit["messages_per_second"],
           "first_commit_seconds": consumer["first_commit_seconds"],
           "after_first_commit_over_limit": after / limit["messages_per_second"] if after is not None else None,
           "stored": consumer["stored"], "limit_stored": limit["stored"]}
    if run["stored"] != run["limit_stored"]:
        raise RuntimeError(f"sizes {n}: the consumer stored {run['stored']} strategies, the limit "
                           f"{run['limit_stored']}")
    log(f"  {n:,} messages, run {i + 1}: consumer {run['consumer_messages_per_second']:,.0f} msg/s, limit "
        f"{run['limit_messages_per_second']:,.0f} msg/s ({run['consumer_over_limit']:.2f}), first commit "
        f"{run['first_commit_seconds']:.2f} s")
    return run
