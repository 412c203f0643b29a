"""The messages every phase measures: the discovery pipeline's shape (python/strategy_consumer/samples.py), a
handful invalid, re-discoveries of earlier strategies; large ones for the memory bound; a file of them for
strategy-bench-tool; the topics they are produced to."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

from strategy_consumer import samples
from strategy_consumer.testing import to_protobuf

TOPIC = "bench-strategies"  # the throughput topic: the consumer and the original design drain it
PARTITION_BYTES = 4 * 1024 * 1024  # the dev broker keeps about 5 MiB per partition; stay below
PARTITION_MESSAGES = 90_000         # ... and 100,000 messages
MESSAGE_FORMAT = ["json"]  # --message_format: how valid messages are encoded


def invalid_messages() -> list[bytes]:
    """A handful the consumer refuses, each for another reason (they go to the dead-letter topic)."""
    return [
        b'{"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "parameters": {',
        b"\xff\xfe\x00 binary garbage",
        b'["not", "an", "object"]',
        b'{"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": {"movingAveragePeriod": 14}}',
        b'{"symbol": "SOL/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": "high"}',
        b'{"symbol": "ADA/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": NaN}',
        b'{"symbol": "DOT/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": 1.0,'
        b' "discovery_start_time": "last tuesday"}',
    ]


def encode(strategy: dict, message_format: str = "") -> bytes:
    """The strategy as `message_format` ("json" or "protobuf"; "": --message_format) says."""
    fmt = message_format or MESSAGE_FORMAT[0]
    return to_protobuf(strategy) if fmt == "protobuf" else json.dumps(strategy).encode()


def valid_messages(n: int, seed: int, rediscover_ratio: float, message_format: str = "") -> list[bytes]:
    """n messages of the discovery pipeline's shape (samples.sample_strategy), of which about rediscover_ratio
    re-send an earlier strategy (same symbol, type and parameters: same hash) with a new score, metrics and
    discovery window. Every other message is a strategy not seen before: a draw that repeats an earlier one by
    chance is drawn again (the catalog's small parameter spaces, e.g. one integer in 10..50, would otherwise make
    more than half of a long stream repeats)."""
    rng = random.Random(seed)
    catalog = samples.load_catalog()
    seen: set = set()
    earlier: list[dict] = []
    out = []
    for _ in range(n):
        if earlier and rng.random() < rediscover_ratio:
            old = rng.choice(earlier)
            again = samples.sample_strategy(rng, catalog, symbol=old["symbol"], strategy_type=old["strategy_type"])
            again["parameters"] = old["parameters"]
            out.append(encode(again, message_format))
            continue
        for _attempt in range(100):
            s = samples.sample_strategy(rng, catalog)
            key = (s["symbol"], s["strategy_type"], json.dumps(s["parameters"], sort_keys=True))
            if key not in seen:
                break
        seen.add(key)
        if len(earlier) < 10000:
            earlier.append(s)
        else:
            earlier[rng.randrange(len(earlier))] = s
        out.append(encode(s, message_format))
    return out


def bench_messages(n: int, seed: int) -> list[bytes]:
    bad = invalid_messages()[: max(1, min(7, n // 500))]
    stream = valid_messages(n - len(bad), seed, 0.1)
    rng = random.Random(seed)
    for b in bad:
        stream.insert(rng.randrange(len(stream) + 1), b)
    return stream


def large_messages(n: int, size: int, seed: int) -> list[bytes]:
    """n valid, distinct strategies of about `size` bytes each: the discovery pipeline's shape plus a large field
    the consumer ignores (extra fields are allowed), so every byte reaches the consumer and none the table."""
    out = []
    for m in valid_messages(n, seed, rediscover_ratio=0.0, message_format="json"):  # a large field: JSON only
        doc = json.loads(m)
        doc["backtest_log"] = "x" * max(0, size - len(m) - 20)
        out.append(json.dumps(doc).encode())
    return out


def write_message_file(path: Path, messages: list[bytes]) -> None:
    with open(path, "wb") as f:
        for m in messages:
            f.write(struct.pack("<I", len(m)))
            f.write(m)


def partitions_for(messages: list[bytes], minimum: int) -> int:
    total = sum(len(m) for m in messages)
    return max(minimum, math.ceil(total / PARTITION_BYTES), math.ceil(len(messages) / PARTITION_MESSAGES))


def fill_topic(bootstrap: str, topic: str, partitions: int, messages: list[bytes], max_bytes: int = 0) -> None:
    """Produces message i to partition i % partitions: every partition gets its share. (Keyless messages would
    go to one partition a producer batch at a time, up to 10,000 messages, which can overfill a partition of
    the dev broker.)"""
    from confluent_kafka import Producer

    settings = {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    if max_bytes:
        settings["message.max.bytes"] = max_bytes
    producer = Producer(settings)
    failed: list = []

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(err)

    for i, payload in enumerate(messages):
        while True:
            try:
                producer.produce(topic, payload, partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) or failed:
        raise RuntimeError(f"producing to {topic}: not all delivered ({failed[:3]})")


def check_topic_complete(bootstrap: str, topic: str, partitions: int, expected: int) -> None:
    """Everything produced is still there: the dev broker drops the oldest data of an overfull partition."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        marks = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(partitions)]
    finally:
        c.close()
    low, high = sum(m[0] for m in marks), sum(m[1] for m in marks)
    if low != 0 or high != expected:
        raise RuntimeError(f"topic {topic}: low watermarks sum {low}, high {high}, expected 0 and {expected}: "
                           "the broker dropped data; use more partitions")
