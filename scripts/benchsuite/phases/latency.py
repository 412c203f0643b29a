"""Latency: a producer at a steady rate into a topic of its own while strategy-consumer runs as a service, from
each message's Kafka timestamp to the commit time of the transaction that stored its row."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer

from ..consumer_log import LogReader, batch_count, messages_of
from ..services import Database, checkpoint, consumer_args, run_json
from ..workload import valid_messages, write_message_file

SHORT_FETCH_WAIT_MS = 10
LATENCY_WARMUP_SECONDS = 3.0


def phase_latency(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, seed: int, rate: float,
                  seconds: float, partitions: int, batch_size: int, name: str = "latency",
                  extra_args: tuple = ()) -> dict:
    """One latency run into its own topic, database and group, all called `name`."""
    from confluent_kafka import Producer

    # The first seconds at the steady rate are a warm-up, not counted: the producer connecting, the consumer's
    # first fetches after its assignment. Then `seconds` of messages are measured.
    warmup = int(rate * LATENCY_WARMUP_SECONDS)
    n = warmup + int(rate * seconds)
    messages = valid_messages(n, seed + 1000, 0.0)
    topic = f"bench-{name}"
    message_file = work / f"{name}-messages.bin"
    write_message_file(message_file, messages)
    hashes_file = work / f"{name}-hashes.txt"
    run_json([tool, "rows", f"--input={message_file}", f"--out_dir={work / (name + '-copy')}",
              f"--hashes={hashes_file}"])
    hashes = hashes_file.read_text().split("\n")[:n]
    kafka.create_topic(topic, partitions)
    db = Database(pg, f"bench_{name}", tool)
    checkpoint(pg)

    # A service: no idle timeout, no time limit; stopped with SIGTERM once everything is stored.
    proc = subprocess.Popen(consumer_args(kafka, pg, db.name, topic, topic, batch_size, *extra_args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reader = LogReader(proc.stderr, work / f"{name}-consumer.log")
    reader.start()
    try:
        deadline = time.time() + 120
        while reader.count("assigned ") < partitions:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("strategy-consumer did not get its partitions:\n" + "".join(reader.lines[-20:]))
            time.sleep(0.1)
        time.sleep(0.5)  # let it reach the end of its (empty) partitions

        producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5, "enable.idempotence": True})
        stamps: list = [None] * n  # each message's Kafka timestamp (ms), given explicitly at produce()
        failed: list = []

        def on_delivery(err, _msg):
            if err is not None:
                failed.append(err)

        load = os.getloadavg()[0]
        t0 = time.time()
        for i, payload in enumerate(messages):
            ahead = t0 + i / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
            stamps[i] = int(time.time() * 1000)
            producer.produce(topic, payload, timestamp=stamps[i], on_delivery=on_delivery)
            producer.poll(0)
        produce_seconds = time.time() - t0
        if producer.flush(30) or failed:
            raise RuntimeError(f"latency producer: messages not delivered {failed[:3]}")
        deadline = time.time() + 120
        while db.query("SELECT coalesce(sum(next_offset), 0) FROM strategy_consumer_offsets")[0][0] < n:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("strategy-consumer did not store every message:\n"
                                   + "".join(reader.lines[-20:]))
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)

    committed = dict(db.query("SELECT strategy_hash, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
                              " FROM strategies"))
    seen: dict = {}
    for h in hashes:
        seen[h] = seen.get(h, 0) + 1
    per_message = [(stamps[i], committed[h] * 1000.0 - stamps[i]) for i, h in enumerate(hashes)
                   if i >= warmup and h != "-" and seen[h] == 1 and h in committed]
    if not per_message:
        raise RuntimeError("no latency measured")
    latencies = sorted(lat for _, lat in per_message)
    # When the slowest ones were produced (seconds into the run), to tell a stall from a steady state.
    slowest = [(round((t - stamps[warmup]) / 1000.0, 2), round(lat)) for t, lat in
               sorted(per_message, key=lambda x: -x[1])[:10]]

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, max(0, math.ceil(p / 100 * len(latencies)) - 1))]

    return {"messages": n - warmup, "warmup_messages": warmup, "measured": len(latencies), "rate_target": rate,
            "consumer_args": list(extra_args),
            "rate_achieved": n / produce_seconds, "seconds": produce_seconds * (n - warmup) / n,
            "partitions": partitions,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": latencies[-1],
            "min_ms": latencies[0], "mean_ms": sum(latencies) / len(latencies), "slowest_at_s_ms": slowest,
            "batches": batch_count(messages_of(reader.lines)),
            "load_average_at_start": load}
