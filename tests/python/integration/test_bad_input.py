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
