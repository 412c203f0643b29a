"""A network between the clients and PostgreSQL: strategy-consumer and the original design through the latency
proxy at each round trip of NETWORK_RTTS_MS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..consumer_log import first_time, messages_of
from ..latency_proxy import LatencyProxy
from ..services import ROOT, Database, checkpoint, consumer_args, log, run_json
from ..workload import check_topic_complete, fill_topic

NETWORK_TOPIC = "bench-network"
NETWORK_RTTS_MS = (0.0, 1.0, 5.0)  # round trips between the consumer (or the original design) and PostgreSQL


def phase_network(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, messages: list[bytes],
                  original_messages: int, batch_size: int, partitions: int) -> dict:
    """The consumer and the original design with a network between them and PostgreSQL: each connects through a
    latency proxy on 127.0.0.1 (scripts/benchsuite/latency_proxy.py) that delays every byte by half the round
    trip each way, at each of NETWORK_RTTS_MS. The proxy runs at 0 ms too, so every run pays its copying. The
    consumer drains the whole topic (process start to its last commit); the original design reads its first
    `original_messages` (a round trip per message: its rate is steady from the start)."""
    kafka.create_topic(NETWORK_TOPIC, partitions)
    fill_topic(kafka.bootstrap, NETWORK_TOPIC, partitions, messages)
    check_topic_complete(kafka.bootstrap, NETWORK_TOPIC, partitions, len(messages))
    out: dict = {"messages": len(messages), "original_messages": original_messages, "partitions": partitions,
                 "runs": {}}
    for rtt in NETWORK_RTTS_MS:
        name = f"{rtt:g}ms"
        tag = name.replace(".", "_")
        run: dict = {"rtt_ms": rtt}
        with LatencyProxy((pg.host, pg.port), rtt_ms=rtt) as proxy:
            db = Database(pg, f"bench_network_consumer_{tag}", tool)
            checkpoint(pg)
            args = [a for a in consumer_args(kafka, pg, db.name, NETWORK_TOPIC, f"bench-network-{tag}",
                                             batch_size, "--idle_timeout_seconds=2",
                                             "--max_processing_time_seconds=3600")
                    if not a.startswith(("--postgres_host=", "--postgres_port="))]
            args += ["--postgres_host=127.0.0.1", f"--postgres_port={proxy.port}"]
            log_path = work / f"network-{tag}-consumer.log"
            start = time.time()
            with open(log_path, "w") as log_file:
                result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=log_file)
            if result.returncode != 0:
                raise RuntimeError("strategy-consumer failed:\n" + log_path.read_text(errors="replace")[-3000:])
            end = db.last_commit("strategies", "strategy_consumer_offsets")
            parsed = messages_of(log_path.read_text(errors="replace").splitlines())
            first_batch = first_time(parsed, "batch 1: ")
            run.update(consumer_seconds=end - start, consumer_messages_per_second=len(messages) / (end - start),
                       consumer_first_batch_seconds=(first_batch - start) if first_batch else None,
                       consumer_stored=db.count(), consumer_bytes_through_proxy=proxy.bytes_up + proxy.bytes_down)

            db = Database(pg, f"bench_network_original_{tag}", tool)
            checkpoint(pg)
            dsn = f"host=127.0.0.1 port={proxy.port} dbname={db.name} user={pg.user}"
            start = time.time()
            run_json([sys.executable, str(ROOT / "benchmarks" / "original_design.py"),
                      f"--bootstrap={kafka.bootstrap}", f"--topic={NETWORK_TOPIC}",
                      f"--group=bench-network-original-{tag}", f"--dsn={dsn}", f"--messages={original_messages}"])
            end = db.last_commit("strategies")
            run.update(original_seconds=end - start, original_messages_per_second=original_messages / (end - start))
        run["consumer_over_original"] = run["consumer_messages_per_second"] / run["original_messages_per_second"]
        log(f"  round trip {name}: consumer {run['consumer_messages_per_second']:,.0f} msg/s, original design "
            f"{run['original_messages_per_second']:,.0f} msg/s")
        out["runs"][name] = run
    return out
