"""scripts/bench-rules: strategy-consumer's throughput with the example analyst rules (examples/rules/) against
none, on the same messages (issue 6's target: with rules at least 0.6 of the throughput without).

Uses the bench suite's messages (scripts/benchsuite/), PostgreSQL (fsync on, commit timestamps) and dev broker.
The topic is filled once; each run drains all of it into a fresh database with a group of its own, alternating
without and with rules (--rounds times each, so that the machine's load falls on both alike). A run's rate is the
messages over the time from the consumer's assignment to the commit of its last batch (joining the group is the
same with or without rules, and long on the dev broker). The ratio is of the two medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchsuite import consumer_log, services, workload  # noqa: E402  (the bench suite's parts)

from strategy_consumer.services import DevBroker, PostgresServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "examples" / "rules"
TARGET = 0.6


def drain(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, messages: int, batch_size: int,
          name: str, rules: list[str]) -> dict:
    db = services.Database(pg, f"bench_{name}", tool)
    services.checkpoint(pg)
    args = services.consumer_args(kafka, pg, db.name, workload.TOPIC, f"bench-{name}", batch_size,
                                  "--idle_timeout_seconds=2", "--max_processing_time_seconds=3600",
                                  "--log_format=text", *[f"--rules={r}" for r in rules])
    log_path = work / f"{name}.log"
    start = time.time()
    with open(log_path, "w") as log_file:
        result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=log_file)
    lines = log_path.read_text(errors="replace").splitlines()
    if result.returncode != 0:
        raise RuntimeError(f"strategy-consumer ({name}) failed:\n" + "\n".join(lines[-30:]))
    end = db.last_commit("strategies", "strategy_consumer_offsets")
    stored_offsets = db.query("SELECT coalesce(sum(next_offset), 0) FROM strategy_consumer_offsets")[0][0]
    if stored_offsets != messages:
        raise RuntimeError(f"{name}: offsets stored for {stored_offsets} of {messages} messages")
    parsed = consumer_log.messages_of(lines)
    assigned = consumer_log.first_time(parsed, "assigned ")
    if assigned is None:
        raise RuntimeError(f"{name}: no assignment in the log")
    return {"name": name, "rules": rules, "stored": db.count(), "seconds": end - start,
            "seconds_after_assignment": end - assigned, "messages_per_second": messages / (end - assigned),
            "summary": consumer_log.exit_summary(parsed), "load_average_at_start": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=50_000, help="messages in the topic (default 50,000)")
    ap.add_argument("--rounds", type=int, default=2, help="runs without and with rules each (default 2)")
    ap.add_argument("--batch_size", type=int, default=1000)
    ap.add_argument("--rules", action="append", help=f"rules sources (default {RULES.relative_to(ROOT)})")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--output_dir", default=str(ROOT / "bench-results"))
    args = ap.parse_args()
    rules = args.rules or [str(RULES)]

    tool = services.tool_binary()
    messages = workload.bench_messages(args.messages, args.seed)
    partitions = workload.partitions_for(messages, 128)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp, \
            PostgresServer(fsync=True, settings={"track_commit_timestamp": "on"}) as pg, \
            DevBroker(topics={workload.TOPIC: partitions, services.DLQ: 1}) as kafka:
        services.log(f"producing {args.messages:,} messages to {partitions} partitions")
        workload.fill_topic(kafka.bootstrap, workload.TOPIC, partitions, messages)
        workload.check_topic_complete(kafka.bootstrap, workload.TOPIC, partitions, args.messages)
        for round_ in range(args.rounds):
            for with_rules in (False, True):
                name = f"{'rules' if with_rules else 'none'}_{round_}"
                services.log(f"draining {name}")
                runs.append(drain(pg, kafka, tool, Path(tmp), args.messages, args.batch_size, name,
                                  rules if with_rules else []))
    none = statistics.median(r["messages_per_second"] for r in runs if not r["rules"])
    ruled = statistics.median(r["messages_per_second"] for r in runs if r["rules"])
    ratio = ruled / none
    result = {"time": datetime.now(timezone.utc).isoformat(), "messages": args.messages,
              "partitions": partitions, "batch_size": args.batch_size, "rules": rules,
              "cores": os.cpu_count(), "machine": platform.machine(), "runs": runs,
              "median_messages_per_second": {"none": none, "rules": ruled},
              "ratio": ratio, "target": TARGET, "meets_target": ratio >= TARGET}
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bench-rules-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nstrategy-consumer with and without analyst rules: {args.messages:,} messages, batch "
          f"{args.batch_size}, {partitions} partitions, {os.cpu_count()} cores; rules {', '.join(rules)}")
    for r in runs:
        print(f"  {r['name']:8} {r['messages_per_second']:9,.0f} msg/s ({r['seconds_after_assignment']:.1f} s after "
              f"assignment; {r['stored']:,} stored; load {r['load_average_at_start']:.1f})")
    print(f"median: {none:,.0f} msg/s without rules, {ruled:,.0f} with: {ratio:.2f}x "
          f"(target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'})")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
