"""The design of the Python service strategy-consumer replaces, as scripts/bench's baseline.

What it keeps of that service (tradestream's services/strategy_consumer): Kafka auto-commit (every 5 s), one
``INSERT ... ON CONFLICT (strategy_hash) DO UPDATE`` statement per message, a transaction per 100 messages, a
message that fails to parse logged and skipped. What it changes so that it writes the same rows as
strategy-consumer: it reads the JSON contract (not protobuf), computes the same canonical strategy_hash, and also
stores performance_metrics (the original table had no such column). Kafka client: Debian's confluent_kafka
(the original used kafka-python); database client: psycopg2 (the original used asyncpg).

Runs until it has read ``--messages`` messages, commits, and prints one JSON line:
{"messages": ..., "stored": ..., "skipped": ..., "seconds": ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from datetime import datetime

import psycopg2
from confluent_kafka import Consumer

# The original service's upsert, with performance_metrics added.
UPSERT = """
INSERT INTO strategies (
    symbol, strategy_type, parameters, current_score, strategy_hash,
    discovery_symbol, discovery_start_time, discovery_end_time, performance_metrics
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (strategy_hash) DO UPDATE SET
    current_score = EXCLUDED.current_score,
    performance_metrics = EXCLUDED.performance_metrics,
    last_evaluated_at = NOW(),
    updated_at = NOW()
"""

TRANSACTION_MESSAGES = 100


def _normalise(value):
    """Numbers as the consumer's canonical JSON writes them: an integral float below 2^53 is an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def strategy_hash(message: dict) -> str:
    key = {"parameters": _normalise(message["parameters"]), "strategy_type": message["strategy_type"],
           "symbol": message["symbol"]}
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def row(payload: bytes):
    message = json.loads(payload)
    if not isinstance(message, dict) or not isinstance(message.get("parameters"), dict):
        raise ValueError("not a strategy")
    score = message.get("current_score", message.get("score"))
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError("no score")
    metrics = message.get("performance_metrics")
    return (message["symbol"], message["strategy_type"], json.dumps(message["parameters"]), float(score),
            message.get("strategy_hash") or strategy_hash(message), message.get("discovery_symbol"),
            _time(message.get("discovery_start_time")), _time(message.get("discovery_end_time")),
            json.dumps(metrics) if metrics is not None else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--dsn", required=True, help="libpq connection string")
    ap.add_argument("--messages", type=int, required=True, help="stop after reading this many messages")
    args = ap.parse_args()

    started = time.time()
    conn = psycopg2.connect(args.dsn, options="-c TimeZone=UTC", application_name="original-design")
    cur = conn.cursor()
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "auto.commit.interval.ms": 5000})
    consumer.subscribe([args.topic])
    read = stored = skipped = in_transaction = 0
    try:
        while read < args.messages:
            for m in consumer.consume(num_messages=500, timeout=1.0):
                if m.error():
                    continue
                read += 1
                try:
                    values = row(m.value())
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    skipped += 1
                else:
                    cur.execute(UPSERT, values)
                    stored += 1
                    in_transaction += 1
                    if in_transaction >= TRANSACTION_MESSAGES:
                        conn.commit()
                        in_transaction = 0
        conn.commit()
    finally:
        consumer.close()
        conn.close()
    print(json.dumps({"messages": read, "stored": stored, "skipped": skipped, "seconds": time.time() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
