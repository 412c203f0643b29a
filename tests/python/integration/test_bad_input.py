"""Bad input through the real pipeline: each bad message lands in the DLQ with its reason, the consumer never
crashes, and every valid message interleaved with them is stored."""

from __future__ import annotations

import json

from strategy_consumer import protobuf as pb
from strategy_consumer import samples

GOOD = {"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER",
        "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}, "score": 1.0,
        "performance_metrics": {"win_rate": 0.5, "max_drawdown": -0.1, "total_trades": 100, "profit_factor": 1.2},
        "discovery_start_time": "2024-01-01T00:00:00Z", "discovery_end_time": "2024-02-01T00:00:00Z"}


def with_(**changes) -> str:
    m = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is ...:
            m.pop(key)
        else:
            m[key] = value
    return json.dumps(m)


def params(**changes) -> str:
    return with_(parameters={**GOOD["parameters"], **changes})


def metrics(**changes) -> str:
    return with_(performance_metrics={**GOOD["performance_metrics"], **changes})


def proto(change=None, **fields) -> bytes:
    """GOOD as the discovery pipeline's protobuf, with `change(message)` applied."""
    message = pb.decode_strategy(pb.encode_strategy(GOOD, **fields))
    if change:
        change(message)
    return message.SerializeToString()


def _set(path: str, value):
    def change(message):
        *parents, name = path.split(".")
        target = message
        for p in parents:
            target = getattr(target, p)
        setattr(target, name, value)
    return change


PROTO_BAD = [
    (proto()[:-7], "protobuf.truncated"),
    (pb.parameters_message("MacdCrossoverParameters", GOOD["parameters"]).SerializeToString(),
     "protobuf.message_type"),
    (proto(_set("strategy.parameters.type_url", "type.googleapis.com/strategies.NoSuchParameters")),
     "protobuf.any_type"),
    (proto(_set("strategy.parameters.value", b"\x08\xff\xff")), "protobuf.any_value"),
    (proto(_set("strategy.strategy_name", "SMA_RSI")), "protobuf.type_mismatch"),
    (proto(_set("strategy.type", pb.strategy_type_number("SMA_RSI"))), "protobuf.enum_name_mismatch"),
    (proto(_set("strategy.type", 999), enum=True), "protobuf.enum_unknown"),
    (proto(_set("end_time.seconds", 253402300800)), "protobuf.timestamp"),
    (proto(_set("start_time.nanos", 1_000_000_000)), "protobuf.timestamp"),
    (proto(_set("score", float("nan"))), "protobuf.score"),
]

BAD = [  # (payload, the rule the dead letter must name)
    (b"", "format.empty"),
    (b"\xff\xfe{\"symbol\": 1}", "format.unrecognized"),  # not `{` first: neither JSON nor protobuf
    (with_()[:40], "format.json"),
    (b"[1, 2, 3]", "format.object"),
    (b'"just a string"', "format.object"),
    (b"[" * 100_000 + b"]" * 100_000, "format.depth"),
    (with_().replace('"score": 1.0', '"score": NaN'), "format.json"),
    (with_().replace('"score": 1.0', '"score": Infinity'), "format.json"),
    (with_().replace('"score": 1.0', '"score": 1e400'), "format.number"),
    (with_(score="1.0"), "format.type"),
    (params(shortEmaPeriod="12"), "parameters.type"),
    (with_(symbol=...), "format.required"),
    (with_(symbol=""), "metadata.symbol"),
    (with_(symbol="X" * 10_000), "metadata.symbol"),
    (with_(symbol="BTC\u0000USD"), "format.nul"),
    (with_().replace('"BTC/USD"', '"BTC\\ud800"'), "format.json"),
    (with_().replace('"score": 1.0', '"score": 1.0, "score": 2.0'), "format.duplicate_key"),
    (with_(strategy_type="NOT_A_STRATEGY"), "metadata.strategy_type"),
    (params(shortEmaPeriod=7), "parameters.range"),
    (params(longEmaPeriod=33), "parameters.range"),
    (params(signalPeriod=9.5), "parameters.type"),
    (params(extra=1), "parameters.unknown"),
    (with_(parameters={"shortEmaPeriod": 12, "longEmaPeriod": 26}), "parameters.missing"),
    (metrics(win_rate=1.5), "metrics.win_rate"),
    (metrics(max_drawdown=0.2), "metrics.max_drawdown"),
    (metrics(total_trades=-3), "metrics.total_trades"),
    (metrics(profit_factor=-1), "metrics.profit_factor"),
    (metrics(sharpe_ratio="high"), "metrics.type"),
    (with_(discovery_start_time="2024-03-01T00:00:00Z"), "metadata.discovery_window"),
    (with_(discovery_end_time="2999-01-01T00:00:00Z"), "metadata.discovery_future"),
    (with_(discovery_start_time="yesterday"), "format.timestamp"),
    *PROTO_BAD,
]


def test_each_bad_message_is_dead_lettered_with_its_reason_and_the_good_ones_land(env):
    good = [json.dumps(m) for m in samples.sample_stream(len(BAD) + 1, seed=5, rediscover_ratio=0)]
    stream, expected = [], {}
    for i, (payload, rule) in enumerate(BAD):
        stream.append(good[i])
        expected[len(stream)] = rule  # the offset the bad message will have in partition 0
        stream.append(payload)
    stream.append(good[-1])
    env.produce(stream, partition=0)
    ten_mb = b'{"symbol": "BTC/USD", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    env.produce([ten_mb], partition=1)  # alone: the dev broker keeps about 5 MiB per partition

    result = env.drain()
    assert "exiting (idle)" in result.stderr

    hashes = {r[0] for r in env.query("SELECT strategy_hash FROM strategies")}
    assert len(hashes) == len({json.dumps(json.loads(g)["parameters"]) + json.loads(g)["symbol"] +
                               json.loads(g)["strategy_type"] for g in good})
    assert env.query("SELECT count(*) FROM strategies")[0][0] == len(hashes)

    letters = env.dead_letters(len(BAD) + 1, timeout=30)
    assert len(letters) == len(BAD) + 1
    by_position = {(l["source_partition"], l["source_offset"]): (l, h) for l, h in letters}
    for offset, rule in expected.items():
        letter, headers = by_position[(0, offset)]
        rules = [r["rule"] for r in letter["reasons"]]
        assert rule in rules, (offset, rule, letter["error"])
        assert letter["stage"] in ("decode", "validate")
        assert headers["dlq.stage"] == letter["stage"] and headers["dlq.source.offset"] == str(offset)
        stage_of_rule = "decode" if rule.startswith(("format.", "protobuf.")) else "validate"
        assert letter["stage"] == stage_of_rule, (rule, letter["stage"])
        if rule.startswith("protobuf."):
            assert letter["message_format"] == "protobuf" and letter["original_message_encoding"] == "base64"

    big, _ = by_position[(1, 0)]
    assert big["reasons"][0]["rule"] == "format.size"
    assert big["original_message_truncated"] is True
    assert big["original_message_bytes"] == len(ten_mb)
    assert big["original_message"].startswith('{"symbol": "BTC/USD"')

    assert env.stored_offsets() == {0: len(stream), 1: 1}


def test_good_protobuf_with_unknown_fields_lands(env):
    """Unknown fields are ignored (compatible), at every level."""
    data = pb.encode_strategy(GOOD) + bytes([0x48, 0x07])  # field 9, varint
    env.produce([data], partition=0)
    env.drain()
    assert env.query("SELECT strategy_type, parameters FROM strategies") == [("MACD_CROSSOVER", GOOD["parameters"])]


def test_all_reasons_of_one_message_are_reported(env):
    bad = json.dumps({"symbol": "", "strategy_type": "MACD_CROSSOVER",
                      "parameters": {"shortEmaPeriod": 99, "longEmaPeriod": 26}, "score": 1,
                      "performance_metrics": {"win_rate": 2}})
    env.produce([bad], partition=0)
    env.drain()
    (letter, _), = env.dead_letters(1)
    assert sorted(r["rule"] for r in letter["reasons"]) == [
        "metadata.symbol", "metrics.win_rate", "parameters.missing", "parameters.range"]
    assert {r["field"] for r in letter["reasons"]} == {
        "symbol", "performance_metrics.win_rate", "parameters.signalPeriod", "parameters.shortEmaPeriod"}


def test_custom_catalog_and_unknown_types(env, tmp_path):
    catalog = tmp_path / "extra.tsv"
    catalog.write_text("strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\n"
                       "MY_STRATEGY\tMyParameters\tlookback\tINTEGER\t5\t10\t7\n"
                       "MACD_CROSSOVER\tMacdCrossoverParameters\tfast\tINTEGER\t1\t3\t2\n")
    msgs = [with_(strategy_type="MY_STRATEGY", parameters={"lookback": 6}),
            with_(strategy_type="MY_STRATEGY", parameters={"lookback": 11}),
            with_(parameters={"fast": 2}),           # MACD_CROSSOVER replaced whole
            with_(),                                 # the built-in MACD_CROSSOVER parameters are now unknown
            with_(strategy_type="SOMETHING_ELSE", parameters={"x": 1})]
    env.produce(msgs, partition=0)
    env.drain(f"--strategy_catalog={catalog}")
    stored = sorted(env.query("SELECT strategy_type, parameters::text FROM strategies"))
    assert stored == [("MACD_CROSSOVER", '{"fast": 2}'), ("MY_STRATEGY", '{"lookback": 6}')]
    rules = sorted(r["rule"] for l, _ in env.dead_letters(3) for r in l["reasons"])
    assert "parameters.range" in rules and "metadata.strategy_type" in rules and "parameters.unknown" in rules


def test_unknown_types_are_stored_when_allowed(env):
    env.produce([with_(strategy_type="BRAND_NEW", parameters={"anything": "goes"})], partition=0)
    env.drain("--allow_unknown_strategy_types")
    assert env.query("SELECT strategy_type FROM strategies") == [("BRAND_NEW",)]


def test_an_unreadable_catalog_is_a_configuration_error(env, tmp_path):
    import subprocess
    bad = tmp_path / "bad.tsv"
    bad.write_text("strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\nX\tP\tp\tFLOAT\t1\t2\t1\n")
    r = subprocess.run(env.flags(f"--strategy_catalog={bad}", "--idle_timeout_seconds=1"), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert f"{bad}:2" in r.stderr and "INTEGER or DOUBLE" in r.stderr


# ---- attackers: no single message, whatever its size and shape within --max_message_bytes, stops the others ----

MAX_MESSAGE_BYTES = 1 << 20  # --max_message_bytes' default
MAX_LETTER_BYTES = 900 * 1024
MAX_REASONS = 20  # model/reason.hpp kMaxReasons; one more reason counts the rest


def exactly_max(message: dict, filler_path: tuple[str, ...]) -> bytes:
    """The message, grown to exactly MAX_MESSAGE_BYTES by the string at filler_path (a key when it ends in '*')."""
    def encode(fill: str) -> bytes:
        m = json.loads(json.dumps(message))
        target = m
        for key in filler_path[:-1]:
            target = target[key]
        last = filler_path[-1]
        if last.endswith("*"):
            target[last[:-1] + fill] = target.pop(last)
        else:
            target[last] = fill
        return json.dumps(m).encode()
    fill = "k" * (MAX_MESSAGE_BYTES - len(encode("")))
    out = encode(fill)
    assert len(out) == MAX_MESSAGE_BYTES, len(out)
    return out


def one_enormous_unknown_key() -> bytes:
    m = json.loads(with_(strategy_hash="attack-1"))
    m["parameters"]["x*"] = 1
    return exactly_max(m, ("parameters", "x*"))


def thousands_of_unknown_keys() -> bytes:
    m = json.loads(with_(strategy_hash="attack-2"))
    for i in range(60_000):
        m["parameters"][f"u{i:05d}"] = i
    m["parameters"]["pad"] = ""
    return exactly_max(m, ("parameters", "pad"))


def many_bad_parameters_and_metrics() -> bytes:
    m = json.loads(with_(strategy_hash="attack-3"))
    m["parameters"] = {name: -10 ** 9 for name in GOOD["parameters"]}  # every catalog parameter out of range
    for i in range(7_000):
        m["parameters"][f"bad{i:05d}"] = "not a number " + "v" * 40
    for i in range(7_000):
        m["performance_metrics"][f"metric{i:05d}"] = "not a number " + "w" * 40
    m["performance_metrics"]["pad"] = ""
    return exactly_max(m, ("performance_metrics", "pad"))


def enormous_duplicate_key() -> bytes:
    half = "d" * (MAX_MESSAGE_BYTES // 2 - 200)
    out = with_(strategy_hash="attack-4").replace('"parameters": {', f'"parameters": {{"{half}": 1, "{half}": 2, ', 1)
    return out.encode().ljust(MAX_MESSAGE_BYTES)  # JSON allows white space after the object


def unterminated_string() -> bytes:
    start = b'{"symbol": "'
    return start + b"s" * (MAX_MESSAGE_BYTES - len(start))


ATTACKERS = [  # (payload, a rule its letter must name)
    (one_enormous_unknown_key(), "parameters.unknown"),
    (thousands_of_unknown_keys(), "parameters.unknown"),
    (many_bad_parameters_and_metrics(), "parameters.range"),
    (enormous_duplicate_key(), "format.duplicate_key"),
    (unterminated_string(), "format.json"),
]


def test_no_attacker_message_stalls_the_ones_behind_it(env):
    """Each attacker is at most --max_message_bytes; its letter used to be several MiB, refused by the producer
    and retried for ever, holding back every later batch. Now every letter is delivered within its budget and the
    valid messages after the attackers, in their partitions and the others, are stored and committed."""
    good = iter(range(1000))
    counts = {p: 0 for p in range(env.partitions)}
    layout = {0: ATTACKERS[0:2], 1: ATTACKERS[2:4], 2: ATTACKERS[4:5], 3: []}  # ~5 MiB per partition at most
    stored = set()
    for partition, attackers in layout.items():
        stream = []
        for payload, _ in attackers + [(None, None)]:
            for _ in range(3):
                i = next(good)
                stream.append(with_(strategy_hash=f"good-{i}"))
                stored.add(f"good-{i}")
            if payload is not None:
                stream.append(payload)
        counts[partition] = env.produce(stream, partition=partition)

    result = env.drain(timeout=240)
    assert "exiting (idle)" in result.stderr

    assert {r[0] for r in env.query("SELECT strategy_hash FROM strategies")} == stored
    assert env.stored_offsets() == {p: n for p, n in counts.items() if n}

    letters = env.dead_letters(len(ATTACKERS), timeout=60)
    assert len(letters) == len(ATTACKERS)
    for letter, headers in letters:
        size = len(json.dumps(letter, separators=(",", ":"), ensure_ascii=False).encode())
        assert size <= MAX_LETTER_BYTES, (letter["error"][:200], size)
        assert len(letter["reasons"]) <= MAX_REASONS + 1
        assert len(letter["error"]) < 20_000
        assert len(headers["dlq.error"]) <= 1003
        assert letter["original_message_truncated"] is True
        assert letter["original_message_bytes"] == MAX_MESSAGE_BYTES
        # The original is cut last: most of the letter is still the original (as JSON escapes it).
        assert len(json.dumps(letter["original_message"], ensure_ascii=False).encode()) > 0.75 * size
    rules = {rule: [l for l, _ in letters if rule in [r["rule"] for r in l["reasons"]]] for _, rule in ATTACKERS}
    for payload, rule in ATTACKERS:
        assert rules[rule], f"no letter names {rule}"
    many = [l for l, _ in letters if l["reasons"][-1]["rule"] == "reasons.more"]
    assert len(many) == 2  # thousands of unknown keys; many bad parameters and metrics
    for letter in many:
        assert int(letter["reasons"][-1]["value"]) > 5_000


def refusing_broker_env(pg, kafka):
    from conftest import Env
    return Env(pg, kafka)


def test_a_letter_refused_for_good_is_replaced_by_a_minimal_one_and_offsets_move_on(pg):
    """The dead-letter topic refuses the letter (MESSAGE_TOO_LARGE, as a broker with a small max.message.bytes
    would): the minimal letter takes its place, and nothing waits behind it."""
    from strategy_consumer.services import DevBroker

    with DevBroker() as kafka:  # its own broker: the injected errors hit whatever produces next
        env = refusing_broker_env(pg, kafka)
        try:
            n0 = env.produce([with_(strategy_hash="r-0"), params(extra=1), with_(strategy_hash="r-1")], partition=0)
            n1 = env.produce([with_(strategy_hash="r-2")], partition=1)
            kafka.command("produce-errors 10")  # the next Produce request: the letter's
            result = env.drain()
            assert "exiting (idle)" in result.stderr
            assert "sending a minimal letter in its place" in result.stderr
            assert sorted(r[0] for r in env.query("SELECT strategy_hash FROM strategies")) == ["r-0", "r-1", "r-2"]
            assert env.stored_offsets() == {0: n0, 1: n1}
            (letter, headers), = env.dead_letters(1)
            assert letter["original_message_omitted"] is True and "original_message" not in letter
            assert "MSG_SIZE_TOO_LARGE" in letter["refused"]
            assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (env.topic, 0, 1)
            assert letter["stage"] == "validate" and "parameters.unknown" in letter["error"]
            assert letter["original_message_bytes"] == len(params(extra=1).encode())
            assert headers["dlq.source.offset"] == "1" and headers["dlq.stage"] == "validate"
        finally:
            env.close()


def test_a_letter_that_cannot_be_delivered_at_all_does_not_hold_back_offsets(pg):
    """Not even the minimal letter is accepted (TOPIC_AUTHORIZATION_FAILED: librdkafka then refuses the minimal
    letter to the same topic at once): the letter is logged as undeliverable and the offsets of its message and of
    every other commit; a later run delivers its letters."""
    from strategy_consumer.services import DevBroker

    with DevBroker() as kafka:
        env = refusing_broker_env(pg, kafka)
        try:
            n0 = env.produce([with_(strategy_hash="u-0"), params(extra=1), with_(strategy_hash="u-1")], partition=0)
            kafka.command("produce-errors 29")  # the letter's Produce request
            result = env.drain()
            assert "exiting (idle)" in result.stderr
            assert "undeliverable" in result.stderr
            assert sorted(r[0] for r in env.query("SELECT strategy_hash FROM strategies")) == ["u-0", "u-1"]
            assert env.stored_offsets() == {0: n0}
            assert env.dead_letters(0, timeout=3) == []

            # The producer is not stuck: the next bad message's letter arrives whole.
            n0 += env.produce([params(extra=2), with_(strategy_hash="u-2")], partition=0)
            env.drain()
            assert env.stored_offsets() == {0: n0}
            (letter, _), = env.dead_letters(1)
            assert letter["source_offset"] == 3 and "original_message" in letter
        finally:
            env.close()


def test_a_fatal_error_of_the_dead_letter_producer_replaces_it_and_the_letter_arrives(pg):
    """OUT_OF_ORDER_SEQUENCE_NUMBER is fatal for librdkafka's idempotent producer: every later letter would fail
    with it for ever. The producer is replaced, and the letter it held is sent again, whole."""
    from strategy_consumer.services import DevBroker

    with DevBroker() as kafka:
        env = refusing_broker_env(pg, kafka)
        try:
            n0 = env.produce([with_(strategy_hash="f-0"), params(extra=1), with_(strategy_hash="f-1")], partition=0)
            kafka.command("produce-errors 45")
            result = env.drain()
            assert "the dead-letter producer failed fatally" in result.stderr
            assert sorted(r[0] for r in env.query("SELECT strategy_hash FROM strategies")) == ["f-0", "f-1"]
            assert env.stored_offsets() == {0: n0}
            (letter, _), = env.dead_letters(1)
            assert letter["source_offset"] == 1 and letter["original_message"] == params(extra=1)
        finally:
            env.close()


def test_the_letter_budget_follows_the_producers_message_max_bytes(env):
    """With message.max.bytes lowered (--kafka_property: a topic of small records), the letter of a 200 KB message
    is cut to fit under it, headers included, and delivered, instead of being refused locally for ever."""
    big = params(extra="x" * 200_000)
    n0 = env.produce([with_(strategy_hash="b-0"), big, with_(strategy_hash="b-1")], partition=0)
    result = env.drain("--kafka_property=message.max.bytes=20000")
    assert "exiting (idle)" in result.stderr
    assert env.stored_offsets() == {0: n0}
    (letter, headers), = env.dead_letters(1)
    size = len(json.dumps(letter, separators=(",", ":"), ensure_ascii=False).encode())
    assert size + sum(len(k) + len(v) for k, v in headers.items()) < 20_000
    assert letter["original_message_truncated"] is True and letter["original_message_bytes"] == len(big)
    assert big.startswith(letter["original_message"]) and len(letter["original_message"]) > 10_000
    assert letter["reasons"][0]["rule"] == "parameters.unknown"
