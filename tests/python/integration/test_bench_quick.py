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
    "limit_over_original",
    "cpu_path_messages_per_second", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
    "latency_short_fetch_wait_p99_ms", "peak_rss_mb", "large_peak_rss_mb", "large_peak_rss_over_bound",
    "network_0ms_consumer_messages_per_second", "network_0ms_original_messages_per_second",
    "network_1ms_consumer_messages_per_second", "network_1ms_original_messages_per_second",
    "network_5ms_consumer_messages_per_second", "network_5ms_original_messages_per_second",
    "network_1ms_consumer_over_original", "network_1ms_consumer_over_0ms",
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
        == details["rows"]["distinct_strategies"]
    assert details["consumer"]["partitions"] >= 128
    assert details["latency"]["measured"] > 0
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
    assert "consumer / limit" in result.stdout and "peak RSS" in result.stdout and "round trip 1ms" in result.stdout


def _cpp_string_constant(source: str, name: str) -> str:
    """The value of `const char* const name = "..." "...";` in a C++ source (adjacent literals joined)."""
    start = source.index(f"{name} =")
    body = source[start:source.index(";", start)]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def test_limit_runs_the_sinks_own_sql():
    """The limit is only honest while it runs the statements the sink runs: scripts/bench.py keeps copies of them."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench

    source = (ROOT / "cpp" / "src" / "postgres" / "sink.cpp").read_text()
    assert _cpp_string_constant(source, "kUpsert") == bench.UPSERT, "update UPSERT in scripts/bench.py"
    assert _cpp_string_constant(source, "kCreateStaging") == bench.STAGING_DDL, \
        "update STAGING_DDL in scripts/bench.py"


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
