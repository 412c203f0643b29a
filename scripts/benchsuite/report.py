"""The report of a run: the figures computed from the phases' details, each target's verdict, the printed table
and the JSON result."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime

from .phases import PHASES
from .phases.latency import SHORT_FETCH_WAIT_MS
from .phases.sizes import ISSUE_WORKLOAD_SIZE, QUICK_SIZES, SIZES
from .services import ROOT

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
    # The drain at each size of the sizes phase: at least the limit, the first row within a second.
    **{f"sizes_{n}_consumer_over_limit": (">=", 1.0) for n in SIZES + QUICK_SIZES},
    **{f"sizes_{n}_first_commit_seconds": ("<=", 1.0) for n in SIZES + QUICK_SIZES},
    # Issue 17's steady-state target, on its own workload (200,000 distinct strategies, batch 5000).
    f"sizes_{ISSUE_WORKLOAD_SIZE}_after_first_commit_over_limit": (">=", 1.2),
}


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
    if "history" in d:
        f["history_on_over_off"] = d["history"]["on_messages_per_second"] / d["history"]["off_messages_per_second"]
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
    if "sizes" in d:
        for n, run in d["sizes"]["runs"].items():
            f[f"sizes_{n}_consumer_over_limit"] = run["consumer_over_limit"]
            f[f"sizes_{n}_first_commit_seconds"] = run["first_commit_seconds"]
            if run["after_first_commit_over_limit"] is not None:
                f[f"sizes_{n}_after_first_commit_over_limit"] = run["after_first_commit_over_limit"]
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
    if "history" in d:
        x = d["history"]
        rows.append(("score history: consumer after first commit, off / on",
                     f"{rate(x['off_messages_per_second'])} / {rate(x['on_messages_per_second'])}: costs "
                     f"{100 * x['cost']:.1f}% ({x['history_rows']:,} history rows; whole run "
                     f"{100 * x['whole_run_cost']:.1f}%)", "", ""))
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

    def each_run(run, key):  # every run's figure, after the median, when a size ran several times
        each = run.get("each", [])
        return f" ({' / '.join(f'{r[key]:.2f}' for r in each)})" if len(each) > 1 else ""

    if "sizes" in d:
        for n, run in d["sizes"]["runs"].items():
            several = f", median of {len(run['each'])} runs" if len(run.get("each", [])) > 1 else ""
            rows.append((f"drain of {int(n):,} distinct strategies ({run['partitions']} partitions, batch "
                         f"{d['sizes']['batch_size']}): consumer / limit{several}",
                         f"{rate(run['consumer_messages_per_second'])} / {rate(run['limit_messages_per_second'])}: "
                         f"{run['consumer_over_limit']:.2f}{each_run(run, 'consumer_over_limit')}",
                         *target(f"sizes_{n}_consumer_over_limit", ">= 1.0")))
            rows.append((f"  its first committed row after start{', the slowest run' if several else ''}",
                         f"{run['first_commit_seconds']:.2f} s{each_run(run, 'first_commit_seconds')}",
                         *target(f"sizes_{n}_first_commit_seconds", "< 1 s")))
            if run["after_first_commit_over_limit"] is not None:
                name = f"sizes_{n}_after_first_commit_over_limit"
                rows.append((f"  after its first commit / limit{several}",
                             f"{run['after_first_commit_over_limit']:.2f}"
                             f"{each_run(run, 'after_first_commit_over_limit')}",
                             *(target(name, ">= 1.2") if name in TARGETS else ("", ""))))
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


def build_result(args, phases: set, started: datetime, load_start: tuple, settings: dict, d: dict, rows: dict,
                 sizes: list[int], n: int, memory_n: int, latency_seconds: float, cpu_seconds: float,
                 partitions: int, latency_partitions: int) -> dict:
    """The run's JSON result (the figures, their verdicts and every phase's details, d); raises when a phase stored
    other strategies than the consumer's rows hold."""
    for name, run in (d.get("history") or {}).get("runs", {}).items():
        for r in run:
            if r["stored"] != rows["distinct_strategies"]:
                raise RuntimeError(f"history {name} stored {r['stored']} strategies, expected "
                                   f"{rows['distinct_strategies']}")
    if "history" in d and (d["history"]["history_rows_off"] != 0
                           or d["history"]["history_rows"] < rows["distinct_strategies"]):
        raise RuntimeError(f"history rows: {d['history']['history_rows_off']} with it off, "
                           f"{d['history']['history_rows']} with it on")
    for phase in ("limit", "ceiling", "consumer", "original"):
        if phase in d and d[phase]["stored"] != rows["distinct_strategies"]:
            raise RuntimeError(f"{phase} stored {d[phase]['stored']} strategies, expected "
                               f"{rows['distinct_strategies']}")

    figures = compute_figures(d)
    rows.pop("files")
    d["rows"] = rows
    return {
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
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
