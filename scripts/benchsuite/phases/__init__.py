"""The measured phases, one module each, and run_phases: the messages generated once, then the chosen phases in
order against one throwaway PostgreSQL and the dev brokers they need."""

from __future__ import annotations

from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..services import DLQ, log, pg_settings
from ..workload import TOPIC, bench_messages, check_topic_complete, fill_topic, partitions_for, write_message_file
from .cpu import phase_cpu
from .drain import phase_consumer, phase_original
from .history import phase_history
from .latency import SHORT_FETCH_WAIT_MS, phase_latency
from .limit import phase_ceiling, phase_limit, phase_rows
from .memory import phase_large, phase_memory
from .network import NETWORK_RTTS_MS, phase_network
from .sizes import QUICK_SIZES, REPEATS, SIZES, phase_sizes

PHASES = ("limit", "ceiling", "consumer", "history", "original", "cpu", "latency", "memory", "large", "network",
          "sizes")


def run_phases(args, phases: set, work: Path, d: dict, n: int, memory_n: int, latency_seconds: float,
               cpu_seconds: float, tool: str):
    """Runs the chosen phases into d; returns what the report needs besides."""
    log(f"generating {n:,} messages (seed {args.seed})")
    messages = bench_messages(n, args.seed)
    message_file = work / "messages.bin"
    write_message_file(message_file, messages)
    sizes = sorted(len(m) for m in messages)
    log("the consumer's rows, batch by batch (strategy-bench-tool rows)")
    rows = phase_rows(tool, message_file, work, args.batch_size)
    if "cpu" in phases:
        log(f"CPU path: decode + validate + hash + encode on one thread ({cpu_seconds} s)")
        d["cpu"] = phase_cpu(tool, message_file, cpu_seconds)

    partitions = partitions_for(messages, args.partitions)
    latency_partitions = args.latency_partitions or partitions
    with PostgresServer(fsync=True, settings={"track_commit_timestamp": "on"}) as pg:
        settings = pg_settings(pg)
        if "limit" in phases:
            log(f"limit: psql \\copy + upsert of {rows['rows']:,} rows in {rows['batches']} transactions")
            d["limit"] = phase_limit(pg, tool, rows, work, n)
        if "ceiling" in phases:
            log("ceiling: psql \\copy of each strategy's first row straight into strategies")
            d["ceiling"] = phase_ceiling(pg, tool, rows, work, n)
        if phases & {"consumer", "original", "latency", "history"}:
            with DevBroker(topics={TOPIC: partitions, DLQ: 1}) as kafka:
                if phases & {"consumer", "original", "history"}:
                    log(f"producing {n:,} messages to {partitions} partitions")
                    fill_topic(kafka.bootstrap, TOPIC, partitions, messages)
                    check_topic_complete(kafka.bootstrap, TOPIC, partitions, n)
                if "consumer" in phases:
                    log("strategy-consumer draining the topic")
                    # Without the score history, as the limit runs the upsert without it: the history phase
                    # measures what it costs.
                    d["consumer"] = phase_consumer(pg, kafka, tool, work, n, args.batch_size, partitions,
                                                   extra_args=("--score_history=false",))
                if "history" in phases:
                    pairs = 1 if args.quick else 2
                    log(f"score history: strategy-consumer draining the topic with --score_history off and on, "
                        f"{pairs} time(s) each, alternately")
                    d["history"] = phase_history(pg, kafka, tool, work, n, args.batch_size, partitions, pairs)
                if "original" in phases:
                    log("the original design (one upsert per message, a transaction per 100) on the same topic")
                    d["original"] = phase_original(pg, kafka, tool, n)
                if "latency" in phases:
                    log(f"latency: {args.latency_rate:,.0f} msg/s for {latency_seconds} s into "
                        f"{latency_partitions} partitions, strategy-consumer as a service")
                    d["latency"] = phase_latency(pg, kafka, tool, work, args.seed, args.latency_rate,
                                                 latency_seconds, latency_partitions, args.batch_size)
                    # The dev broker answers a fetch at the end of a partition only after fetch.wait.max.ms
                    # (500 ms), even when data arrives meanwhile; a real broker answers on arrival. Once more
                    # with a short wait, to tell the broker's share of the latency from the consumer's.
                    log(f"latency once more with --kafka_property=fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}")
                    d["latency_short_fetch_wait"] = phase_latency(
                        pg, kafka, tool, work, args.seed, args.latency_rate, latency_seconds, latency_partitions,
                        args.batch_size, name="latency_short_fetch_wait",
                        extra_args=(f"--kafka_property=fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}",))
        if "memory" in phases:
            log(f"memory: generating and draining {memory_n:,} messages")
            memory_messages = bench_messages(memory_n, args.seed + 1)
            d["memory"] = phase_memory(pg, tool, work, memory_messages, args.batch_size, args.partitions)
            del memory_messages
        if "network" in phases:
            network_n = args.network_messages or (2000 if args.quick else 50_000)
            original_n = min(network_n, 1000 if args.quick else 10_000)
            network_partitions = partitions_for(messages[:network_n], 16)
            with DevBroker(topics={DLQ: 1}) as kafka:
                log(f"network: {network_n:,} messages through a latency proxy at "
                    f"{', '.join(f'{r:g}' for r in NETWORK_RTTS_MS)} ms round trip (the original design: "
                    f"{original_n:,})")
                d["network"] = phase_network(pg, kafka, tool, work, messages[:network_n], original_n,
                                             args.batch_size, network_partitions)
        if "sizes" in phases:
            sizes = QUICK_SIZES if args.quick else SIZES
            log(f"sizes: the drain against the limit at {', '.join(f'{n:,}' for n in sizes)} distinct strategies "
                f"(batch 5000, at least 64 partitions), {1 if args.quick else REPEATS} run(s) each")
            d["sizes"] = phase_sizes(pg, tool, work, sizes, args.seed, repeats=1 if args.quick else REPEATS)
        if "large" in phases:
            n_large, size = (24, 600_000) if args.quick else (400, 1_000_000)
            # Quick: small budgets, so that even a tiny topic holds several times the budget.
            budget_args = ["--max_batch_bytes=2097152", "--max_buffered_bytes=8388608"] if args.quick else []
            budget_mb = 8.0 if args.quick else 128.0
            log(f"large messages: draining {n_large} valid messages of {size:,} bytes, budget {budget_mb:.0f} MiB")
            d["large"] = phase_large(pg, tool, work, n_large, size, budget_args, budget_mb)
        del messages

    return rows, sizes, partitions, latency_partitions, settings
