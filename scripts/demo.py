"""scripts/demo: publish a realistic sample of discovered strategies, drain it with strategy-consumer, report.

The sample mixes both wire formats: about half the strategies go as the discovery pipeline publishes them (binary
protobuf discovery.DiscoveredStrategy, keyed by symbol; a quarter of those in the pre-2026 enum form), the rest
as JSON."""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter

from strategy_consumer import samples
from strategy_consumer.protobuf import decode_strategy
from strategy_consumer.strategy_inspector import strategy_hash
from strategy_consumer.testing import to_protobuf
from strategy_consumer.services import DevBroker, PostgresServer, find_binary, produce, repo_root

TOPIC = "discovered-strategies"
DLQ = "strategy-consumer-dlq"
RULES = repo_root() / "examples" / "rules"  # the analysts' rules the service runs (README: Analyst rules)


def invalid_messages() -> list:
    """A few messages the pipeline must refuse, each for another reason."""
    return [
        b"{\"symbol\": \"BTC/USD\", \"strategy_type\": \"MACD_CROSSOVER\", \"parameters\": {",  # truncated JSON
        b"\xff\xfe\x00 binary garbage",                                                      # not UTF-8
        json.dumps(["not", "an", "object"]),
        json.dumps({"symbol": "ETH/USD", "strategy_type": "SMA_RSI", "parameters": {"movingAveragePeriod": 14}}),
        json.dumps({"symbol": "SOL/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": "high"}),
        '{"symbol": "ADA/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": NaN}',
        json.dumps({"symbol": "DOT/USD", "strategy_type": "SMA_RSI", "parameters": {}, "score": 1.0,
                    "discovery_start_time": "last tuesday"}),
        # decodable, but the validator refuses them
        json.dumps({"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "score": 0.9,
                    "parameters": {"shortEmaPeriod": 40, "longEmaPeriod": 26, "signalPeriod": 9}}),
        json.dumps({"symbol": "ETH/USD", "strategy_type": "QUANTUM_MOON", "parameters": {"x": 1}, "score": 9.9}),
        json.dumps({"symbol": "SOL/USD", "strategy_type": "PIVOT", "parameters": {"period": 20}, "score": 1.1,
                    "performance_metrics": {"win_rate": 1.3, "max_drawdown": 0.2, "total_trades": 12}}),
        json.dumps({"symbol": "ADA/USD", "strategy_type": "PIVOT", "parameters": {"period": 20}, "score": 1.0,
                    "discovery_start_time": "2026-10-02T00:00:00Z", "discovery_end_time": "2026-09-01T00:00:00Z"}),
        json.dumps({"symbol": "", "strategy_type": "VWAP_CROSSOVER", "score": 0.7,
                    "parameters": {"vwapPeriod": 20, "movingAveragePeriod": 20}}),
        # protobuf: truncated; an Any naming no parameter message; the name disagreeing with the parameters
        _protobuf_demo()[:30],
        _with_type_url(_protobuf_demo(), "type.googleapis.com/strategies.NoSuchParameters"),
        _protobuf_demo(strategy_type="SMA_RSI"),
    ]


def _with_type_url(data: bytes, type_url: str) -> bytes:
    message = decode_strategy(data)
    message.strategy.parameters.type_url = type_url
    return message.SerializeToString()


def _protobuf_demo(strategy_type: str = "MACD_CROSSOVER") -> bytes:
    """A protobuf message with MACD parameters (named `strategy_type`, whatever parameters that type takes)."""
    from strategy_consumer.protobuf import encode_strategy

    return encode_strategy({"symbol": "BTC/USD", "strategy_type": strategy_type, "current_score": 0.8,
                            "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}},
                           parameter_message="MacdCrossoverParameters")


def rule_breakers() -> list:
    """Valid for the catalog, but refused by an example analyst rule (examples/rules/)."""
    perfect = samples.sample_strategy(random.Random(1), samples.load_catalog(), strategy_type="PIVOT")
    perfect["performance_metrics"].update(win_rate=0.99, total_trades=240)
    inverted = samples.sample_strategy(random.Random(2), samples.load_catalog(), strategy_type="DOUBLE_EMA_CROSSOVER")
    inverted["parameters"].update(shortEmaPeriod=28, longEmaPeriod=12)
    return [perfect, inverted]


def _symbol_key(value):
    """The Kafka key the discovery pipeline sets: the symbol."""
    if isinstance(value, dict):
        return value.get("symbol", "").encode()
    if isinstance(value, bytes) and not value.lstrip().startswith(b"{"):
        try:
            return decode_strategy(value).symbol.encode()
        except Exception:  # the broken ones the demo sends on purpose
            return None
    return None


def read_dead_letters(bootstrap: str, at_least: int, timeout: float = 15, quiet: float = 2) -> list[dict]:
    """Every letter on the topic: at least `at_least`, then until none came for `quiet` seconds."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([DLQ])
    letters, deadline, last = [], time.time() + timeout, time.time()
    while time.time() < deadline and (len(letters) < at_least or time.time() - last < quiet):
        m = c.poll(0.5)
        if m is not None and not m.error():
            letters.append(json.loads(m.value()))
            last = time.time()
    c.close()
    return letters


def table(title: str, header: list[str], rows: list) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(str(x).ljust(w) if isinstance(x, str) else str(x).rjust(w) for x, w in zip(r, widths)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--strategies", type=int, default=5000, help="valid messages to publish (default 5000)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()

    print("Starting a throwaway PostgreSQL 15 and the dev Kafka broker (127.0.0.1 only) ...")
    with PostgresServer() as pg, DevBroker(topics={TOPIC: 8, DLQ: 1}) as kafka:
        db = pg.create_database("tradestream")
        valid = list(samples.sample_stream(args.strategies, seed=args.seed, rediscover_ratio=0.12))
        bad = invalid_messages()
        # Every second strategy as protobuf (every eighth in the enum form), the others as JSON.
        stream = [to_protobuf(s, enum=i % 8 == 1) if i % 2 else s for i, s in enumerate(valid)]
        formats = Counter("protobuf" if isinstance(m, bytes) else "json" for m in stream)
        hashes = {f: {strategy_hash(s["symbol"], s["strategy_type"], s["parameters"])
                      for i, s in enumerate(valid) if (i % 2 == 1) == (f == "protobuf")} for f in formats}
        rng = random.Random(args.seed)
        for b in bad + rule_breakers():  # spread the bad ones through the stream
            stream.insert(rng.randrange(len(stream)), b)
        t0 = time.time()
        produce(kafka.bootstrap, TOPIC, stream, key_of=_symbol_key)
        print(f"Published {len(stream)} messages to {TOPIC} at {kafka.bootstrap}, keyed by symbol "
              f"({formats['protobuf']} valid ones as protobuf DiscoveredStrategy, {len(valid) // 8} of them in the "
              f"pre-2026 enum form; {formats['json']} as JSON) "
              f"({len(valid)} strategies incl. re-discoveries, {len(bad)} invalid, {len(stream) - len(valid) - len(bad)}"
              f" that break an analyst rule) in {time.time() - t0:.1f} s")

        cmd = [find_binary("strategy-consumer"), f"--kafka_bootstrap_servers={kafka.bootstrap}",
               *pg.flags(db), "--idle_timeout_seconds=2", "--max_processing_time_seconds=300",
               "--http_port=0", "--log_format=text", f"--rules={RULES}"]
        print("Running: " + " ".join(cmd[:1] + [a for a in cmd[1:]]))
        t0 = time.time()
        result = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        elapsed = time.time() - t0
        summary = [line for line in result.stderr.splitlines() if "exiting" in line]
        print(f"strategy-consumer exited {result.returncode} after {elapsed:.1f} s (incl. joining the group and "
              f"2 s idle): {summary[-1].split(' info ')[-1] if summary else ''}")
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return result.returncode

        conn = pg.connect(db)
        cur = conn.cursor()
        cur.execute("SELECT count(*), count(*) FILTER (WHERE updated_at > created_at) FROM strategies")
        total, updated = cur.fetchone()
        print(f"\n{total} strategies stored; {updated} of them re-discovered and updated")
        cur.execute("SELECT strategy_hash FROM strategies")
        stored = {r[0] for r in cur.fetchall()}
        table("Both formats landed", ["format", "strategies sent", "stored"],
              [(f, len(h), len(h & stored)) for f, h in sorted(hashes.items())])
        cur.execute("SELECT symbol, count(*), round(avg(current_score)::numeric, 3), round(max(current_score)::numeric, 3)"
                    " FROM strategies GROUP BY symbol ORDER BY count(*) DESC")
        table("Per symbol", ["symbol", "strategies", "avg score", "best score"], cur.fetchall())
        cur.execute("SELECT strategy_type, count(*) FROM strategies GROUP BY strategy_type"
                    " ORDER BY count(*) DESC, strategy_type LIMIT 12")
        rows = cur.fetchall()
        cur.execute("SELECT count(DISTINCT strategy_type) FROM strategies")
        table(f"Per strategy type (top 12 of {cur.fetchone()[0]})", ["strategy type", "strategies"], rows)
        cur.execute("SELECT symbol, strategy_type, round(current_score::numeric, 4), parameters::text,"
                    " (performance_metrics->>'sharpe_ratio'), (performance_metrics->>'win_rate')"
                    " FROM strategies ORDER BY current_score DESC LIMIT 10")
        top = [(*r[:3], r[3] if len(r[3]) <= 58 else r[3][:55] + "...", *r[4:]) for r in cur.fetchall()]
        table("Top 10 strategies by score", ["symbol", "type", "score", "parameters", "sharpe", "win rate"], top)
        cur.execute("SELECT topic, kafka_partition, next_offset FROM strategy_consumer_offsets ORDER BY 2")
        offsets = cur.fetchall()
        print(f"\nOffsets stored with the rows: {sum(o[2] for o in offsets)} messages over {len(offsets)} partitions")

        letters = read_dead_letters(kafka.bootstrap, len(bad))
        reasons = Counter(r["rule"] for letter in letters for r in letter["reasons"])
        print(f"\n{len(letters)} message(s) dead-lettered to {DLQ}:")
        shown = Counter()
        for letter in letters:  # every decode/validate refusal; two examples of each analyst rule
            shown[letter["stage"]] += 1
            if not letter["stage"].startswith("rule:") or shown[letter["stage"]] <= 2:
                print(f"  {letter['source_topic']}[{letter['source_partition']}]@{letter['source_offset']}"
                      f" stage={letter['stage']} format={letter.get('message_format', '?')}:"
                      f" {letter['error'][:100]}")
        for stage, n in sorted(shown.items()):
            if stage.startswith("rule:") and n > 2:
                print(f"  ... and {n - 2} more at stage {stage}")
        # Logged one by one up to 10 per rule and batch, then summed up.
        warned = re.findall(r"rule (\S+) warns about strategy \w+ \(([^)]*)\): (.*?)(?: \[.*)?$", result.stderr, re.M)
        more = sum(int(n) for n in re.findall(r"rule \S+: (\d+) more warning", result.stderr))
        print(f"{len(warned) + more} strategies stored with a warning of an example rule, e.g.:")
        for name, strategy, message in warned[:2]:
            print(f"  {name} ({strategy}): {message[:100]}")
        table("Rejections by rule", ["rule", "count"], sorted(reasons.items(), key=lambda kv: -kv[1]))
        conn.close()
    print("\nStopped PostgreSQL and the broker.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
