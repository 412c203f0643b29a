"""The benchmark suite's parts: scripts/bench.py parses the options and runs them; scripts/bench_rules.py
uses them too.

  workload      the messages (generated, written to a file for strategy-bench-tool, produced to a topic)
  services      what the phases drive: strategy-bench-tool, a migrated database, strategy-consumer's flags
  consumer_log  strategy-consumer's log lines: parsed, and collected from a running process
  phases/       one module per measured phase, and run_phases that runs the chosen ones in order
  report        figures, verdicts against the targets, the printed table and the JSON result
  latency_proxy the network phase's proxy between a client and PostgreSQL
"""
