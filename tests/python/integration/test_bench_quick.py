"""scripts/bench --quick: the benchmark suite runs end to end and reports every figure. No timing is asserted:
this proves the suite works, the figures of a quick run mean nothing."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

FIGURES = {
    "limit_messages_per_second", "limit_seconds", "consumer_messages_per_second", "consumer_seconds",
    "original_messages_per_second", "original_seconds", "consumer_over_limit", "consumer_over_original",
    "limit_over_original", "ceiling_messages_per_second", "ceiling_seconds", "limit_over_ceiling",
    "consumer_after_first_row_messages_per_second", "consumer_after_first_row_over_limit",
    "consumer_after_first_row_over_ceiling",
    "cpu_path_messages_per_second", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
    "latency_short_fetch_wait_p99_ms", "peak_rss_mb", "large_peak_rss_mb", "large_peak_rss_over_bound",
    "network_0ms_consumer_messages_per_second", "network_0ms_original_messages_per_second",
    "network_1ms_consumer_messages_per_second", "network_1ms_original_messages_per_second",
    "network_5ms_consumer_messages_per_second", "network_5ms_original_messages_per_second",
    "network_1ms_consumer_over_original", "network_1ms_consumer_over_0ms", "history_on_over_off",
    "sizes_2000_consumer_over_limit", "sizes_2000_first_commit_seconds",
    "sizes_4000_consumer_over_limit", "sizes_4000_first_commit_seconds",
}


def test_quick_run_reports_every_figure(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick",
                             f"--output_dir={tmp_path}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=540)
    assert result.returncode == 0, result.stderr[-4000:]
    files = list(tmp_path.glob("bench-*-quick.json"))
    assert len(files) == 1, files
    report = json.loads(files[0].read_text())

    assert set(report["figures"]) == FIGURES
    for name, value in report["figures"].items():
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (name, value)

    assert report["quick"] is True
    assert report["machine"]["cores"] >= 1
    assert len(report["git"]["commit"]) == 40
    assert report["date"].endswith("Z")
    assert report["postgres"]["fsync"] == "on" and report["postgres"]["synchronous_commit"] == "on"
    assert set(report["targets"]) <= FIGURES
    details = report["details"]
    # Every phase worked on the same strategies, and the table shows the figures.
    assert details["rows"]["invalid"] > 0
    assert details["limit"]["stored"] == details["consumer"]["stored"] == details["original"]["stored"] \
        == details["ceiling"]["stored"] == details["ceiling"]["rows_written"] == details["rows"]["distinct_strategies"]
    assert details["consumer"]["partitions"] >= 128
    assert details["latency"]["measured"] > 0
    # The score history's cost: the same drain with it off (no history rows) and on (one per applied message).
    history = details["history"]
    assert history["history_rows_off"] == 0 and history["history_rows"] >= details["rows"]["distinct_strategies"]
    assert all(r["stored"] == details["rows"]["distinct_strategies"] for run in history["runs"].values() for r in run)
    assert "score history" in result.stdout
    # Large valid messages: everything stored, memory within the byte budget plus the stated constant.
    assert details["large"]["stored"] == details["large"]["messages"]
    assert details["large"]["within_budget"], details["large"]
    # A network between us and PostgreSQL: every round trip ran, through the proxy, storing everything.
    network = details["network"]
    assert sorted(network["runs"]) == ["0ms", "1ms", "5ms"]
    for run in network["runs"].values():
        assert run["consumer_stored"] > 0 and run["consumer_bytes_through_proxy"] > network["messages"] * 100
    # The original design waits a round trip per message: slower at 5 ms than at 0 ms, whatever the machine.
    assert network["runs"]["5ms"]["original_seconds"] > network["runs"]["0ms"]["original_seconds"]
    # The drain at several sizes: each stored what the limit stored, every message once.
    sizes = details["sizes"]["runs"]
    assert sorted(sizes, key=int) == ["2000", "4000"]
    for n, run in sizes.items():
        assert run["partitions"] >= 64 and len(run["each"]) == 1  # --quick: one run a size (the full suite: 3)
        for each in run["each"]:
            assert each["stored"] == each["limit_stored"] == int(n)
        assert run["consumer_over_limit"] == run["each"][0]["consumer_over_limit"]
    assert "drain of 4,000 distinct strategies" in result.stdout
    assert "consumer / limit" in result.stdout and "peak RSS" in result.stdout and "round trip 1ms" in result.stdout \
        and "ceiling" in result.stdout


# What marks a statement of the write path (postgres/statements.hpp) in a string literal.
WRITE_PATH_SQL = re.compile(r"INSERT INTO|ON CONFLICT|DELETE FROM|CREATE TEMP|strategy_staging|"
                            r"strategy_consumer_offsets|strategy_specs \(|to_regclass", re.IGNORECASE)


def _string_literals(source: str) -> list[str]:
    source = re.sub(r"//[^\n]*", "", source)  # comments may name the tables
    return re.findall(r'"((?:[^"\\]|\\.)*)"', source)


def test_limit_runs_the_sinks_own_sql():
    """The limit is only honest while it runs the statements the sink runs: both take them from
    postgres/statements.hpp (the bench through `strategy-bench-tool sql`), and neither keeps a copy."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchsuite.phases.limit import limit_script
    from benchsuite.services import sink_statements, tool_binary

    sql = sink_statements(tool_binary())
    assert {"copy_columns", "staging_table", "create_staging", "upsert", "advance_offsets", "load_offsets",
            "specs_table_exists", "insert_specs"} <= set(sql)
    script = limit_script(sql, ["/tmp/batch-000001.copy"])
    assert script.startswith(sql["create_staging"] + ";\n")
    assert f"\\copy {sql['staging_table']} ({sql['copy_columns']}) FROM '/tmp/batch-000001.copy'" in script
    assert sql["upsert"] + ";\n" in script
    # The bench suite keeps no copy: neither its entry points nor any module of scripts/benchsuite/.
    suite = [ROOT / "scripts" / "bench.py", ROOT / "scripts" / "bench_rules.py",
             *sorted((ROOT / "scripts" / "benchsuite").rglob("*.py"))]
    assert len(suite) > 5, suite
    for path in suite:
        source = path.read_text()
        assert "DO UPDATE SET" not in source and "CREATE TEMP" not in source, f"{path} keeps no SQL copy"
    # The sink's sources hold no write-path SQL of their own: every statement is the header's.
    for path in ("cpp/src/postgres/sink.cpp", "cpp/src/postgres/strategy_specs.cpp",
                 "cpp/src/postgres/copy_encoder.cpp", "cpp/include/strategy_consumer/postgres/copy_encoder.hpp"):
        found = [lit for lit in _string_literals((ROOT / path).read_text()) if WRITE_PATH_SQL.search(lit)]
        assert not found, (path, found)


def test_quick_run_with_protobuf_input(tmp_path):
    """The CPU path and the drain also for the discovery pipeline's protobuf messages."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--only=cpu,consumer",
                             "--message_format=protobuf", f"--output_dir={tmp_path}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=540)
    assert result.returncode == 0, result.stderr[-4000:]
    files = list(tmp_path.glob("bench-*-protobuf-quick.json"))
    assert len(files) == 1, files
    report = json.loads(files[0].read_text())
    assert report["parameters"]["message_format"] == "protobuf"
    assert {"cpu_path_messages_per_second", "consumer_messages_per_second"} <= set(report["figures"])
    details = report["details"]
    assert details["consumer"]["stored"] == details["rows"]["distinct_strategies"] > 0
    assert details["cpu"]["valid"] > 0 and details["cpu"]["decode_us_per_message"] > 0
