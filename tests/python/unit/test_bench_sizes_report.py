"""The benchmarks' report of the sizes phase (scripts/benchsuite/report.py): with several runs of a size, each ratio
judged is the median of the runs' ratios, the first committed row the slowest run's, and the table shows every
run's figure next to it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from benchsuite import report  # noqa: E402


def run(limit: float, consumer: float, after_first: float, first_commit: float) -> dict:
    return {"limit_messages_per_second": limit, "consumer_messages_per_second": consumer,
            "consumer_over_limit": consumer / limit, "first_commit_seconds": first_commit,
            "after_first_commit_over_limit": after_first, "stored": 200_000, "limit_stored": 200_000}


def sizes_details() -> dict:
    each = [run(40_000, 36_000, 1.05, 0.3), run(40_000, 48_000, 1.25, 1.4), run(40_000, 46_000, 1.30, 0.2)]
    return {"sizes": {"batch_size": 5000, "repeats": 3, "runs": {"200000": {
        "messages": 200_000, "partitions": 64, "each": each,
        "limit_messages_per_second": 40_000, "consumer_messages_per_second": 46_000,
        "consumer_over_limit": 1.15, "first_commit_seconds": 1.4, "after_first_commit_over_limit": 1.25}}}}


def test_the_verdicts_take_the_median_ratio_and_the_slowest_first_row():
    f = report.compute_figures(sizes_details())
    assert f["sizes_200000_consumer_over_limit"] == 1.15
    assert f["sizes_200000_after_first_commit_over_limit"] == 1.25
    assert report.verdict("sizes_200000_after_first_commit_over_limit", 1.25) == "met"
    # One run of three took 1.4 s to its first row: the target (under 1 s) is missed, whatever the others did.
    assert report.verdict("sizes_200000_first_commit_seconds", f["sizes_200000_first_commit_seconds"]) == "MISSED"


def test_the_table_shows_every_run_next_to_the_median(capsys):
    d = sizes_details()
    result = {"figures": report.compute_figures(d), "details": d,
              "parameters": {"messages": 200_000, "batch_size": 5000, "partitions": 64}, "date": "2026-11-29",
              "machine": {"cores": 2, "load_average_at_start": [0.5, 0.5, 0.5]},
              "git": {"commit": "0" * 40, "dirty": False}}
    report.print_table(result)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "drain of 200,000" in line)
    assert "median of 3 runs" in row and "1.15 (0.90 / 1.20 / 1.15)" in row and "| met" in row
    first = next(line for line in out.splitlines() if "first committed row" in line)
    assert "the slowest run" in first and "1.40 s (0.30 / 1.40 / 0.20)" in first and "MISSED" in first
    after = next(line for line in out.splitlines() if "after its first commit / limit" in line)
    assert "1.25 (1.05 / 1.25 / 1.30)" in after and "| met" in after
