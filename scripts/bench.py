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
import math
import os
import platform
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from strategy_consumer import samples
from strategy_consumer.testing import to_protobuf
from strategy_consumer.services import DevBroker, PostgresServer, find_binary, free_port

from benchsuite.latency_proxy import LatencyProxy

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "bench-strategies"
MEMORY_TOPIC = "bench-memory"
LARGE_TOPIC = "bench-large"
NETWORK_TOPIC = "bench-network"
NETWORK_RTTS_MS = (0.0, 1.0, 5.0)  # round trips between the consumer (or the original design) and PostgreSQL
# What the consumer holds beyond --max_buffered_bytes (memory_budget.hpp): the process itself with its libraries
# (about 30 MB), librdkafka's queue of prefetched messages (queued.max.messages.kbytes: 16 MiB) and the fetch
# responses being read into it (up to one message over, per partition fetched at once), one message over each
# budget, and what the allocator keeps of freed blocks.
LARGE_CONSTANT_MB = 96.0
LARGE_ROW_SECONDS = 0.1  # each row's insert in the large phase: the database, not Kafka, is the bottleneck
DLQ = "bench-dlq"
PARTITION_BYTES = 4 * 1024 * 1024  # the dev broker keeps about 5 MiB per partition; stay below
PARTITION_MESSAGES = 90_000         # ... and 100,000 messages
SHORT_FETCH_WAIT_MS = 10
MESSAGE_FORMAT = ["json"]  # --message_format: how valid messages are encoded
LATENCY_WARMUP_SECONDS = 3.0

TARGETS = {
    "consumer_over_limit": (">=", 1.0),
    "consumer_after_first_row_over_limit": (">=", 1.2),
    "consumer_over_original": (">=", 30.0),
    "cpu_path_messages_per_second": (">=", 250_000.0),
    "latency_p99_ms": ("<=", 200.0),
    "peak_rss_mb": ("<=", 150.0),
    "large_peak_rss_over_bound": ("<=", 1.0),
    "network_1ms_consumer_over_original": (">=", 30.0),
    "network_1ms_consumer_over_0ms": (">=", 0.8),
}

PG_SETTINGS_SHOWN = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
                     "track_commit_timestamp", "shared_buffers", "max_wal_size", "checkpoint_timeout",
                     "wal_buffers", "work_mem")


def log(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def tool_binary() -> str:
    if os.environ.get("STRATEGY_BENCH_TOOL"):
        return os.environ["STRATEGY_BENCH_TOOL"]
    # Next to the consumer's build tree (build/cpp/strategy-consumer -> build/benchmarks/strategy-bench-tool).
    candidate = Path(find_binary("strategy-consumer")).resolve().parents[1] / "benchmarks" / "strategy-bench-tool"
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError("strategy-bench-tool not found: build the project (scripts/build) or set "
                            "$STRATEGY_BENCH_TOOL")


def sink_statements(tool: str) -> dict:
    """The write path's SQL by name, as the sink runs it (strategy-bench-tool sql, postgres/statements.hpp)."""
    return run_json([tool, "sql"])


def run_json(args: list[str]) -> dict:
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- messages -----------------------------------------------------------------------------------------------

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


def encode(strategy: dict) -> bytes:
    return to_protobuf(strategy) if MESSAGE_FORMAT[0] == "protobuf" else json.dumps(strategy).encode()


def valid_messages(n: int, seed: int, rediscover_ratio: float) -> list[bytes]:
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
            out.append(encode(again))
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
        out.append(encode(s))
    return out


def bench_messages(n: int, seed: int) -> list[bytes]:
    bad = invalid_messages()[: max(1, min(7, n // 500))]
    stream = valid_messages(n - len(bad), seed, 0.1)
    rng = random.Random(seed)
    for b in bad:
        stream.insert(rng.randrange(len(stream) + 1), b)
    return stream


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


# --- PostgreSQL ---------------------------------------------------------------------------------------------

class Database:
    def __init__(self, pg: PostgresServer, name: str, tool: str):
        self.pg, self.name = pg, pg.create_database(name)
        run_json([tool, "migrate", f"--postgres_host={pg.host}", f"--postgres_port={pg.port}",
                  f"--postgres_database={name}", f"--postgres_username={pg.user}"])

    def query(self, sql: str, *args):
        conn = self.pg.connect(self.name)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()

    def last_commit(self, *tables: str) -> float:
        """Wall-clock time (epoch seconds) of the latest commit that wrote a row of these tables."""
        parts = " UNION ALL ".join(f"SELECT max(pg_xact_commit_timestamp(xmin)) AS t FROM {t}" for t in tables)
        (value,) = self.query(f"SELECT extract(epoch FROM max(t))::float8 FROM ({parts}) x")[0]
        if value is None:
            raise RuntimeError(f"{self.name}: no commit timestamp (is track_commit_timestamp on?)")
        return value

    def count(self) -> int:
        return self.query("SELECT count(*) FROM strategies")[0][0]


def checkpoint(pg: PostgresServer) -> None:
    """Each phase starts from a clean checkpoint, so none pays for the dirty pages of the one before."""
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def pg_settings(pg: PostgresServer) -> dict:
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            out = {}
            for name in PG_SETTINGS_SHOWN:
                cur.execute(f"SHOW {name}")
                out[name] = cur.fetchone()[0]
            return out
    finally:
        conn.close()


# --- strategy-consumer --------------------------------------------------------------------------------------

EXTRA_CONSUMER_ARGS: list[str] = []  # --consumer_arg: for experiments with the consumer's settings


def http_flags() -> list[str]:
    """The HTTP server (/health, /ready, /metrics) runs as in production, but on a free port of 127.0.0.1: the
    default 0.0.0.0:8080 could be taken by another consumer on this machine."""
    help_text = subprocess.run([find_binary("strategy-consumer"), "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True).stdout
    if "--http_port" not in help_text:
        return []
    return [f"--http_port={free_port()}", "--http_host=127.0.0.1"]


def consumer_args(kafka: DevBroker, pg: PostgresServer, db: str, topic: str, group: str, batch_size: int,
                  *extra: str) -> list[str]:
    return [find_binary("strategy-consumer"), f"--kafka_bootstrap_servers={kafka.bootstrap}",
            f"--kafka_topic={topic}", f"--kafka_group_id={group}", f"--dlq_topic={DLQ}",
            f"--batch_size={batch_size}", *pg.flags(db), *http_flags(), *extra, *EXTRA_CONSUMER_ARGS]


TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z (\w+) (.*)$")


def parse_log_line(line: str):
    """(epoch seconds, message) of a strategy-consumer log line, JSON or text; (None, line) for anything else."""
    line = line.strip()
    stamp, message = None, line
    if line.startswith("{"):
        try:
            obj = json.loads(line)
            stamp, message = obj.get("time", "").rstrip("Z"), obj.get("message", "")
        except ValueError:
            pass
    elif m := TEXT_LINE.match(line):
        stamp, message = m.group(1), m.group(3)
    if not stamp:
        return None, message
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp(), message


def messages_of(lines: list[str]) -> list[tuple]:
    return [parse_log_line(line) for line in lines]


def first_time(parsed: list[tuple], prefix: str):
    return next((t for t, m in parsed if m.startswith(prefix)), None)


def batch_count(parsed: list[tuple]) -> int:
    return sum(1 for _, m in parsed if re.match(r"batch \d+: ", m))


def exit_summary(parsed: list[tuple]) -> str:
    found = [m for _, m in parsed if m.startswith("exiting (")]
    return found[-1] if found else ""


# --- phases -------------------------------------------------------------------------------------------------

def phase_rows(tool: str, message_file: Path, work: Path, batch_size: int) -> dict:
    out_dir = work / "copy"
    hashes = work / "hashes.txt"
    summary = run_json([tool, "rows", f"--input={message_file}", f"--batch_size={batch_size}",
                        f"--out_dir={out_dir}", f"--hashes={hashes}"])
    distinct = {h for h in hashes.read_text().split("\n") if h and h != "-"}
    summary["distinct_strategies"] = len(distinct)
    summary["files"] = sorted(str(p) for p in out_dir.glob("batch-*.copy"))
    return summary


def phase_cpu(tool: str, message_file: Path, min_seconds: float) -> dict:
    return run_json([tool, "cpu", f"--input={message_file}", f"--min_seconds={min_seconds}"])


def limit_script(sql: dict, files: list[str]) -> str:
    """The limit's psql script: the sink's staging table, then per batch its COPY and its upsert."""
    out = [sql["create_staging"] + ";"]
    for path in files:
        out += ["BEGIN;", f"\\copy {sql['staging_table']} ({sql['copy_columns']}) FROM '{path}'",
                sql["upsert"] + ";", "COMMIT;"]
    return "\n".join(out) + "\n"


def run_psql(pg: PostgresServer, db: "Database", script_text: str, script: Path, messages: int) -> dict:
    script.write_text(script_text)
    checkpoint(pg)
    env = dict(os.environ, PGOPTIONS="-c TimeZone=UTC")
    load = os.getloadavg()[0]
    start = time.time()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", str(pg.port), "-U", pg.user,
                    "-d", db.name, "-f", str(script)], check=True, stdout=subprocess.DEVNULL, env=env)
    exited = time.time()
    end = db.last_commit("strategies")
    seconds = end - start
    return {"seconds": seconds, "messages_per_second": messages / seconds, "stored": db.count(),
            "psql_exit_seconds": exited - start, "load_average_at_start": load}


def phase_limit(pg: PostgresServer, tool: str, rows: dict, work: Path, messages: int) -> dict:
    db = Database(pg, "bench_limit", tool)
    result = run_psql(pg, db, limit_script(sink_statements(tool), rows["files"]), work / "limit.sql", messages)
    return {**result, "rows_written": rows["rows"], "batches": rows["batches"]}


def phase_ceiling(pg: PostgresServer, tool: str, rows: dict, work: Path, messages: int) -> dict:
    """Plain COPY of the limit's rows straight into `strategies`: each strategy's first row only (no conflicts)."""
    db = Database(pg, "bench_ceiling", tool)
    sql = sink_statements(tool)
    hash_column = [c.strip() for c in sql["copy_columns"].split(",")].index("strategy_hash")
    seen: set[str] = set()
    out_dir = work / "ceiling"
    out_dir.mkdir(exist_ok=True)
    lines = ["SET TimeZone = 'UTC';"]
    written = 0
    for path in rows["files"]:
        kept = []
        for row in Path(path).read_bytes().split(b"\n"):
            if not row:
                continue
            h = row.split(b"\t")[hash_column]
            if h not in seen:
                seen.add(h)
                kept.append(row + b"\n")
        target = out_dir / Path(path).name
        target.write_bytes(b"".join(kept))
        written += len(kept)
        lines += ["BEGIN;", f"\\copy strategies ({sql['copy_columns']}) FROM '{target}'", "COMMIT;"]
    result = run_psql(pg, db, "\n".join(lines) + "\n", work / "ceiling.sql", messages)
    return {**result, "rows_written": written, "batches": rows["batches"]}


def phase_consumer(pg: PostgresServer, kafka: DevBroker, tool: str, work: Path, messages: int, batch_size: int,
                   partitions: int) -> dict:
    db = Database(pg, "bench_consumer", tool)
    checkpoint(pg)
    args = consumer_args(kafka, pg, db.name, TOPIC, "bench-consumer", batch_size, "--idle_timeout_seconds=2",
                         "--max_processing_time_seconds=3600")
    log_path = work / "consumer.log"
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
            "batches": batch_count(parsed), "summary": exit_summary(parsed), "load_average_at_start": load}


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


class LogReader(threading.Thread):
    """Collects a running process's stderr lines (and writes them to a file)."""

    def __init__(self, stream, path: Path):
        super().__init__(daemon=True)
        self.stream, self.path, self.lines = stream, path, []

    def run(self):
        with open(self.path, "w") as f:
            for line in self.stream:
                self.lines.append(line)
                f.write(line)

    def count(self, prefix: str) -> int:
        """Lines whose message starts with prefix."""
        return sum(1 for _, m in messages_of(list(self.lines)) if m.startswith(prefix))


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


def large_messages(n: int, size: int, seed: int) -> list[bytes]:
    """n valid, distinct strategies of about `size` bytes each: the discovery pipeline's shape plus a large field
    the consumer ignores (extra fields are allowed), so every byte reaches the consumer and none the table."""
    out = []
    for m in valid_messages(n, seed, rediscover_ratio=0.0):
        doc = json.loads(m)
        doc["backtest_log"] = "x" * max(0, size - len(m) - 20)
        out.append(json.dumps(doc).encode())
    return out


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


# --- report -------------------------------------------------------------------------------------------------

def git_info() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def verdict(name: str, value: float) -> str:
    op, bound = TARGETS[name]
    ok = value >= bound if op == ">=" else value <= bound
    return "met" if ok else "MISSED"


def compute_figures(d: dict) -> dict:
    f = {}
    for name in ("limit", "ceiling", "consumer", "original"):
        if name in d:
            f[f"{name}_messages_per_second"] = d[name]["messages_per_second"]
            f[f"{name}_seconds"] = d[name]["seconds"]
    if "consumer" in d and d["consumer"].get("messages_per_second_after_first_row"):
        f["consumer_after_first_row_messages_per_second"] = d["consumer"]["messages_per_second_after_first_row"]
    if "limit" in d and "consumer" in d:
        f["consumer_over_limit"] = d["consumer"]["messages_per_second"] / d["limit"]["messages_per_second"]
        if "consumer_after_first_row_messages_per_second" in f:
            f["consumer_after_first_row_over_limit"] = (f["consumer_after_first_row_messages_per_second"]
                                                        / d["limit"]["messages_per_second"])
    if "limit" in d and "ceiling" in d:
        f["limit_over_ceiling"] = d["limit"]["messages_per_second"] / d["ceiling"]["messages_per_second"]
    if "consumer" in d and "ceiling" in d and "consumer_after_first_row_messages_per_second" in f:
        f["consumer_after_first_row_over_ceiling"] = (f["consumer_after_first_row_messages_per_second"]
                                                      / d["ceiling"]["messages_per_second"])
    if "original" in d and "limit" in d:
        f["limit_over_original"] = d["limit"]["messages_per_second"] / d["original"]["messages_per_second"]
    if "original" in d and "consumer" in d:
        f["consumer_over_original"] = d["consumer"]["messages_per_second"] / d["original"]["messages_per_second"]
    if "cpu" in d:
        f["cpu_path_messages_per_second"] = d["cpu"]["messages_per_cpu_second"]
    if "latency" in d:
        f.update(latency_p50_ms=d["latency"]["p50_ms"], latency_p99_ms=d["latency"]["p99_ms"],
                 latency_max_ms=d["latency"]["max_ms"])
    if "latency_short_fetch_wait" in d:
        f["latency_short_fetch_wait_p99_ms"] = d["latency_short_fetch_wait"]["p99_ms"]
    if "memory" in d:
        f["peak_rss_mb"] = d["memory"]["peak_rss_mb"]
    if "large" in d:
        x = d["large"]
        f["large_peak_rss_mb"] = x["peak_rss_mb"]
        f["large_peak_rss_over_bound"] = x["peak_rss_mb"] / (x["budget_mb"] + x["constant_mb"])
    if "network" in d:
        runs = d["network"]["runs"]
        for name, run in runs.items():
            key = name.replace(".", "_")
            f[f"network_{key}_consumer_messages_per_second"] = run["consumer_messages_per_second"]
            f[f"network_{key}_original_messages_per_second"] = run["original_messages_per_second"]
        f["network_1ms_consumer_over_original"] = runs["1ms"]["consumer_over_original"]
        f["network_1ms_consumer_over_0ms"] = (runs["1ms"]["consumer_messages_per_second"]
                                              / runs["0ms"]["consumer_messages_per_second"])
    return f


def print_table(result: dict) -> None:
    f, d, p = result["figures"], result["details"], result["parameters"]

    def rate(x):
        return f"{x:,.0f} msg/s"

    def target(name, text):
        return (text, verdict(name, f[name])) if name in f else (text, "")

    rows = []
    if "limit" in d:
        rows.append(("limit: psql \\copy + upsert", f"{rate(f['limit_messages_per_second'])} "
                     f"({f['limit_seconds']:.1f} s)", "", ""))
    if "ceiling" in d:
        rows.append(("ceiling: psql \\copy straight into strategies", f"{rate(f['ceiling_messages_per_second'])} "
                     f"({f['ceiling_seconds']:.1f} s, {d['ceiling']['rows_written']:,} rows)", "", ""))
    if "limit_over_ceiling" in f:
        rows.append(("  limit / ceiling", f"{f['limit_over_ceiling']:.2f}", "", ""))
    if "consumer" in d:
        rows.append(("strategy-consumer", f"{rate(f['consumer_messages_per_second'])} ({f['consumer_seconds']:.1f} s,"
                     f" {d['consumer']['join_seconds'] or 0:.1f} s of it before its partitions were assigned)", "", ""))
    if "consumer_over_limit" in f:
        rows.append(("  consumer / limit", f"{f['consumer_over_limit']:.2f}",
                     *target("consumer_over_limit", ">= 1.0")))
    if "consumer_after_first_row_messages_per_second" in f:
        rows.append(("  after its first commit", f"{rate(f['consumer_after_first_row_messages_per_second'])} "
                     f"(first commit at {d['consumer']['first_commit_seconds']:.1f} s)", "", ""))
    if "consumer_after_first_row_over_limit" in f:
        rows.append(("  after first commit / limit", f"{f['consumer_after_first_row_over_limit']:.2f}",
                     *target("consumer_after_first_row_over_limit", ">= 1.2")))
    if "consumer_after_first_row_over_ceiling" in f:
        rows.append(("  after first commit / ceiling", f"{f['consumer_after_first_row_over_ceiling']:.2f}", "", ""))
    if "original" in d:
        rows.append(("original design (Python)", f"{rate(f['original_messages_per_second'])} "
                     f"({f['original_seconds']:.1f} s)", "", ""))
    if "consumer_over_original" in f:
        rows.append(("  consumer / original", f"{f['consumer_over_original']:.1f}",
                     *target("consumer_over_original", ">= 30")))
    if "limit_over_original" in f:
        rows.append(("  limit / original", f"{f['limit_over_original']:.1f}", "", ""))
    if "cpu" in d:
        c = d["cpu"]
        rows.append(("CPU path, one core", f"{rate(f['cpu_path_messages_per_second'])} (us per message: decode "
                     f"{c['decode_us_per_message']:.1f} incl. hash {c['hash_us_per_message']:.1f}, validate "
                     f"{c['validate_us_per_message']:.1f}, encode {c['encode_us_per_message']:.1f})",
                     *target("cpu_path_messages_per_second", ">= 250,000 msg/s")))
    if "latency" in d:
        rows.append((f"latency at {d['latency']['rate_target']:,.0f} msg/s, p50 / p99 / max",
                     f"{f['latency_p50_ms']:.0f} / {f['latency_p99_ms']:.0f} / {f['latency_max_ms']:.0f} ms",
                     *target("latency_p99_ms", "p99 <= 200 ms")))
    if "latency_short_fetch_wait" in d:
        x = d["latency_short_fetch_wait"]
        rows.append((f"  the same with fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}",
                     f"{x['p50_ms']:.0f} / {x['p99_ms']:.0f} / {x['max_ms']:.0f} ms", "", ""))
    if "memory" in d:
        rows.append((f"peak RSS draining {d['memory']['messages']:,} messages", f"{f['peak_rss_mb']:.0f} MB",
                     *target("peak_rss_mb", "<= 150 MB")))
    if "large" in d:
        x = d["large"]
        bound = x["budget_mb"] + x["constant_mb"]
        rows.append((f"peak RSS draining {x['messages']:,} valid messages of {x['message_bytes'] / 1e6:.1f} MB "
                     f"({x['topic_mb']:.0f} MiB)", f"{f['large_peak_rss_mb']:.0f} MB",
                     *target("large_peak_rss_over_bound",
                             f"<= {bound:.0f} MB (budget {x['budget_mb']:.0f} + {x['constant_mb']:.0f})")))
    if "network" in d:
        x = d["network"]
        for name, run in x["runs"].items():
            rows.append((f"round trip {name} to PostgreSQL: consumer / original design",
                         f"{rate(run['consumer_messages_per_second'])} / {rate(run['original_messages_per_second'])} "
                         f"= {run['consumer_over_original']:.1f}", "", ""))
        rows.append(("  consumer / original at 1 ms", f"{f['network_1ms_consumer_over_original']:.1f}",
                     *target("network_1ms_consumer_over_original", ">= 30")))
        rows.append(("  consumer at 1 ms / at 0 ms", f"{f['network_1ms_consumer_over_0ms']:.2f}",
                     *target("network_1ms_consumer_over_0ms", ">= 0.8")))
    header = ("measurement", "figure", "target", "")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print(f"\nstrategy-consumer benchmarks, {result['date']}: {p['messages']:,} messages, batch {p['batch_size']}, "
          f"{p['partitions']} partitions; {result['machine']['cores']} cores (load average "
          f"{result['machine']['load_average_at_start'][0]:.1f} at start); commit "
          f"{result['git']['commit'][:10]}{' (dirty tree)' if result['git']['dirty'] else ''}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


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
        if phases & {"consumer", "original", "latency"}:
            with DevBroker(topics={TOPIC: partitions, DLQ: 1}) as kafka:
                if phases & {"consumer", "original"}:
                    log(f"producing {n:,} messages to {partitions} partitions")
                    fill_topic(kafka.bootstrap, TOPIC, partitions, messages)
                    check_topic_complete(kafka.bootstrap, TOPIC, partitions, n)
                if "consumer" in phases:
                    log("strategy-consumer draining the topic")
                    d["consumer"] = phase_consumer(pg, kafka, tool, work, n, args.batch_size, partitions)
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
        if "large" in phases:
            n_large, size = (24, 600_000) if args.quick else (400, 1_000_000)
            # Quick: small budgets, so that even a tiny topic holds several times the budget.
            budget_args = ["--max_batch_bytes=2097152", "--max_buffered_bytes=8388608"] if args.quick else []
            budget_mb = 8.0 if args.quick else 128.0
            log(f"large messages: draining {n_large} valid messages of {size:,} bytes, budget {budget_mb:.0f} MiB")
            d["large"] = phase_large(pg, tool, work, n_large, size, budget_args, budget_mb)
        del messages

    return rows, sizes, partitions, latency_partitions, settings


PHASES = ("limit", "ceiling", "consumer", "original", "cpu", "latency", "memory", "large", "network")


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
    ap.add_argument("--output_dir", default=str(ROOT / "bench-results"), help="where the JSON goes")
    args = ap.parse_args()

    EXTRA_CONSUMER_ARGS[:] = args.consumer_arg
    phases = set(args.only.split(",")) if args.only else set(PHASES)
    if phases - set(PHASES):
        ap.error(f"--only: unknown phase(s) {','.join(sorted(phases - set(PHASES)))}")
    MESSAGE_FORMAT[0] = args.message_format
    if args.message_format == "protobuf":
        phases.discard("original")  # the original design reads JSON only
        phases.discard("network")   # it compares with the original design
    quick = args.quick
    n = args.messages or (5000 if quick else 500_000)
    memory_n = args.memory_messages or (5000 if quick else 1_000_000)
    latency_seconds = args.latency_seconds or (3.0 if quick else 30.0)
    cpu_seconds = args.cpu_seconds or (0.5 if quick else 5.0)
    tool = tool_binary()
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
        finally:  # the consumers' logs, to look at their batches (also when a phase failed)
            logs = sorted(work.glob("*.log"))
            if logs:
                (out_dir / f"{run_name}-logs").mkdir(parents=True, exist_ok=True)
                for path in logs:
                    shutil.copy(path, out_dir / f"{run_name}-logs" / path.name)

    for phase in ("limit", "ceiling", "consumer", "original"):
        if phase in d and d[phase]["stored"] != rows["distinct_strategies"]:
            raise RuntimeError(f"{phase} stored {d[phase]['stored']} strategies, expected "
                               f"{rows['distinct_strategies']}")

    figures = compute_figures(d)
    rows.pop("files")
    d["rows"] = rows
    result = {
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": quick,
        "phases": [p for p in PHASES if p in phases],
        "git": git_info(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": load_start, "load_average_at_end": os.getloadavg()},
        "parameters": {"messages": n, "memory_messages": memory_n, "batch_size": args.batch_size,
                       "partitions": partitions, "latency_partitions": latency_partitions,
                       "latency_rate": args.latency_rate, "latency_seconds": latency_seconds, "seed": args.seed,
                       "cpu_seconds": cpu_seconds, "consumer_args": args.consumer_arg,
                       "message_format": args.message_format,
                       "message_bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1]},
                       "invalid_messages": rows["invalid"]},
        "postgres": settings,
        "figures": figures,
        "targets": {k: {"op": op, "bound": b, "verdict": verdict(k, figures[k])}
                    for k, (op, b) in TARGETS.items() if k in figures},
        "details": d,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{run_name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
