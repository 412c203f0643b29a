"""The benchmark suite's parts (scripts/bench runs them)."""
