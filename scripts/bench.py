"""scripts/bench: throughput, latency and memory of strategy-consumer against PostgreSQL's own limit, in one run.

Starts a throwaway PostgreSQL 15 (fsync, synchronous_commit and full_page_writes on; track_commit_timestamp on,
so that every figure ends at a commit time PostgreSQL recorded) and the dev broker, generates N realistic
messages (the shape of python/strategy_consumer/samples.py: 400-540 bytes; about 10% re-discoveries of earlier
strategies, the rest new; a handful invalid) and measures, on the same messages:

  limit     psql \\copy of exactly the rows strategy-consumer writes (strategy-bench-tool rows: the consumer's
            decode, validation, in-batch fold and COPY encoding, batch by batch) into the temporary staging
            table, then the consumer's INSERT ... ON CONFLICT, one transaction per batch of --batch_size
            messages, into an empty `strategies` table. psql start to the last commit. The statements come from
            `strategy-bench-tool sql` (postgres/statements.hpp), the very ones the sink runs.
  ceiling   psql \\copy of the same rows straight into an empty `strategies`, a transaction per batch, without
            staging or upsert: PostgreSQL's own ingest rate for these rows. Only each strategy's first row is
            copied (its re-discoveries would conflict), so it writes the distinct strategies, fewer rows than
            the limit; the rate counts every message, as all rates do.
  consumer  strategy-consumer draining the pre-filled topic (>= 128 partitions) into an empty table: process
            start (including joining the group) to the commit of its last batch. Also its steady state: the
            messages after its first committed batch over the time from that batch's log line to the last commit
            (consumer_after_first_row).
  history   the consumer's drain again, with --score_history=false and =true alternately (twice each, once with
            --quick), each into an empty database: the score history's cost in the steady state (history_on_over_off;
            the consumer figure above drains with it off, as the limit writes no history).
  original  benchmarks/original_design.py, the design of the Python service this replaces, on the same topic
            with its own group: process start to its last commit.
  CPU path  strategy-bench-tool cpu: decode + validate + hash + encode on one thread, messages per CPU second.
  latency   a producer at a steady rate into a topic of its own while strategy-consumer runs as a service: per
            message after a 3 s warm-up at the same rate, from its Kafka timestamp (CreateTime, ms, set when the
            producer hands it to librdkafka) to
            pg_xact_commit_timestamp of the transaction that stored its row (the time PostgreSQL assigns to the
            commit, just before the commit record's WAL flush). Only messages whose hash occurs once count. Run
            twice: with the consumer's defaults, and with fetch.wait.max.ms=10, because the dev broker answers a
            fetch at the end of a partition only after fetch.wait.max.ms (500 ms) even when data arrives
            meanwhile (a real broker answers on arrival).
  network   the consumer and the original design with a network between them and PostgreSQL: a latency proxy on
            127.0.0.1 (scripts/benchsuite/latency_proxy.py) delays every byte by half the round trip each way, at
            0, 1 and 5 ms; the consumer drains --network_messages, the original design reads up to 10,000.
  memory    peak RSS of strategy-consumer draining --memory_messages (the kernel's VmHWM of the process, read
            every 20 ms while it runs).
  large     peak RSS of strategy-consumer draining 400 valid messages of 1 MB each (a large field the consumer
            ignores; 24 of 600 kB with --quick) while every row's insert waits LARGE_ROW_SECONDS (the database is
            the bottleneck, so a backlog builds up in the consumer), against --max_buffered_bytes (128 MiB; 8 MiB
            with --quick) plus LARGE_CONSTANT_MB.

Every rate counts all messages of the topic (valid or not). Writes one JSON file per run to bench-results/.
--message_format=protobuf sends the valid messages as the discovery pipeline does (binary protobuf
discovery.DiscoveredStrategy, no metrics) instead of JSON; the original design reads only JSON and is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

# This file parses the options and runs the suite; its parts are the package benchsuite/ (workload, services,
# consumer_log, phases/, report).
from benchsuite import report, services, workload
from benchsuite.phases import PHASES, run_phases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes (5,000 messages, 3 s of latency): proves the suite works, measures nothing")
    ap.add_argument("--messages", type=int, help="messages in the throughput topic (default 500,000)")
    ap.add_argument("--memory_messages", type=int, help="messages drained for peak RSS (default 1,000,000)")
    ap.add_argument("--latency_seconds", type=float, help="how long the steady producer runs (default 30)")
    ap.add_argument("--latency_rate", type=float, default=2000, help="messages/s of the steady producer")
    ap.add_argument("--latency_partitions", type=int, help="partitions of the latency topic (default: as the "
                    "throughput topic)")
    ap.add_argument("--batch_size", type=int, default=1000, help="strategy-consumer --batch_size (default 1000)")
    ap.add_argument("--partitions", type=int, default=128, help="at least this many partitions (default 128)")
    ap.add_argument("--network_messages", type=int, help="messages the network phase drains at each round trip "
                    "(default 50,000; the original design reads at most 10,000 of them)")
    ap.add_argument("--cpu_seconds", type=float, help="CPU time of the CPU-path measurement (default 5)")
    ap.add_argument("--consumer_arg", action="append", default=[], metavar="FLAG",
                    help="an extra strategy-consumer flag for every run of it (repeatable), e.g. "
                    "--consumer_arg=--kafka_property=fetch.wait.max.ms=50")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--message_format", choices=("json", "protobuf"), default="json",
                    help="how the valid messages are sent (default json; the invalid ones stay as they are)")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    ap.add_argument("--output_dir", default=str(services.ROOT / "bench-results"), help="where the JSON goes")
    args = ap.parse_args()

    services.EXTRA_CONSUMER_ARGS[:] = args.consumer_arg
    phases = set(args.only.split(",")) if args.only else set(PHASES)
    if phases - set(PHASES):
        ap.error(f"--only: unknown phase(s) {','.join(sorted(phases - set(PHASES)))}")
    workload.MESSAGE_FORMAT[0] = args.message_format
    if args.message_format == "protobuf":
        phases.discard("original")  # the original design reads JSON only
        phases.discard("network")   # it compares with the original design
    quick = args.quick
    n = args.messages or (5000 if quick else 500_000)
    memory_n = args.memory_messages or (5000 if quick else 1_000_000)
    latency_seconds = args.latency_seconds or (3.0 if quick else 30.0)
    cpu_seconds = args.cpu_seconds or (0.5 if quick else 5.0)
    tool = services.tool_binary()
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    d: dict = {}

    out_dir = Path(args.output_dir)
    fmt = '-protobuf' if args.message_format == 'protobuf' else ''
    run_name = f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}{fmt}{'-quick' if quick else ''}"
    with tempfile.TemporaryDirectory(prefix="strategy-consumer-bench-") as tmp:
        work = Path(tmp)
        try:
            rows, sizes, partitions, latency_partitions, settings = run_phases(
                args, phases, work, d, n, memory_n, latency_seconds, cpu_seconds, tool)
        finally:  # the consumers' logs, to look at their batches (also when a phase failed); the sizes phase
            # keeps each size's in its own directory, under names of their own (sizes_<n>.log)
            logs = sorted(work.rglob("*.log"))
            if logs:
                (out_dir / f"{run_name}-logs").mkdir(parents=True, exist_ok=True)
                for path in logs:
                    shutil.copy(path, out_dir / f"{run_name}-logs" / path.name)

    result = report.build_result(args, phases, started, load_start, settings, d, rows, sizes, n, memory_n,
                                 latency_seconds, cpu_seconds, partitions, latency_partitions)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{run_name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    report.print_table(result)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
