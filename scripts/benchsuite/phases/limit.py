"""The database's own figures, with psql and no consumer: the consumer's rows batch by batch (strategy-bench-tool
rows), the limit (\\copy into the sink's staging table and the sink's upsert, statements from strategy-bench-tool
sql) and the ceiling (\\copy of each strategy's first row straight into `strategies`)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from strategy_consumer.services import PostgresServer

from ..services import Database, checkpoint, run_json, sink_statements


def phase_rows(tool: str, message_file: Path, work: Path, batch_size: int) -> dict:
    out_dir = work / "copy"
    hashes = work / "hashes.txt"
    summary = run_json([tool, "rows", f"--input={message_file}", f"--batch_size={batch_size}",
                        f"--out_dir={out_dir}", f"--hashes={hashes}"])
    distinct = {h for h in hashes.read_text().split("\n") if h and h != "-"}
    summary["distinct_strategies"] = len(distinct)
    summary["files"] = sorted(str(p) for p in out_dir.glob("batch-*.copy"))
    return summary


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
