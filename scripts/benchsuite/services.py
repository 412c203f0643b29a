"""What the phases drive besides the messages: strategy-bench-tool (the write path's SQL, migrations, and the
JSON each of its commands prints), a migrated database of the throwaway PostgreSQL with its commit times, and
strategy-consumer's command line; also where the repository is and the run's progress lines on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from strategy_consumer.services import DevBroker, PostgresServer, find_binary, free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository

DLQ = "bench-dlq"
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
