"""Every parameter message of the schema round-trips: built with python3-protobuf (strategy_consumer.protobuf,
from the schema compiled into the core), decoded by the consumer, equal named values; and the old enum form."""

from __future__ import annotations

import hashlib

import pytest

from strategy_consumer import StrategyInspector
from strategy_consumer import protobuf as pb
from strategy_consumer.testing import create_test_protobuf, create_test_strategy

CATALOG = StrategyInspector().strategy_types
TYPE_OF_MESSAGE = {spec["parameter_message"]: name for name, spec in CATALOG.items()}
MESSAGES = pb.parameter_messages()
# Messages with a field that their catalog type does not list (ADX_STOCHASTIC's stochasticDPeriod,
# RAINBOW_OSCILLATOR's periods): decoded all the same, refused by the catalog when the field has a value.
NOT_IN_CATALOG = {"AdxStochasticParameters", "RainbowOscillatorParameters"}


def test_the_schema_has_62_parameter_messages():
    assert len(MESSAGES) == 62
    assert len(set(MESSAGES)) == 62
    assert set(TYPE_OF_MESSAGE) <= set(MESSAGES)


def sample_values(message_name: str) -> dict:
    """A value for every field, none at its default (so each is on the wire); catalog defaults where known."""
    descriptor = pb.message_class("strategies." + message_name).DESCRIPTOR
    catalog = {p["name"]: p for p in CATALOG.get(TYPE_OF_MESSAGE.get(message_name, ""), {}).get("parameters", [])}
    out = {}
    for i, field in enumerate(descriptor.fields):
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = ({"fast": 3, "slow": 21} if value_field.cpp_type == value_field.CPPTYPE_INT32
                               else {"weight": 0.25, "threshold": 1.5})
        elif field.label == field.LABEL_REPEATED:
            out[field.name] = [8, 13, 21, 34]
        elif field.cpp_type == field.CPPTYPE_BOOL:
            out[field.name] = True
        elif field.cpp_type == field.CPPTYPE_DOUBLE:
            out[field.name] = float(catalog[field.name]["default"]) if field.name in catalog else 0.5 + i
        else:
            out[field.name] = int(catalog[field.name]["default"]) if field.name in catalog else 7 + i
    return out


@pytest.mark.parametrize("message_name", MESSAGES)
def test_parameter_message_round_trips(message_name):
    values = sample_values(message_name)
    strategy_type = TYPE_OF_MESSAGE.get(message_name, "CUSTOM_" + message_name.upper())
    strategy = {"symbol": "BTC/USD", "strategy_type": strategy_type, "parameters": values, "current_score": 1.25,
                "discovery_start_time": "2026-10-01T00:00:00Z", "discovery_end_time": "2026-10-31T00:00:00Z"}
    data = pb.encode_strategy(strategy, parameter_message=message_name)
    inspector = StrategyInspector(allow_unknown_strategy_types=True, strategy_hash_scheme="tradestream")
    out = inspector.decode(data)
    assert out["message_format"] == "protobuf"
    assert out["stage"] != "decode", out["reasons"]
    record = out["record"]
    assert record["parameters"] == values
    for name, value in values.items():  # int32 stay integers, doubles numbers
        assert type(record["parameters"][name]) is type(value), name
    assert record["strategy_type"] == strategy_type
    assert record["symbol"] == record["discovery_symbol"] == "BTC/USD"
    assert record["current_score"] == 1.25
    assert record["discovery_start_time"].isoformat() == "2026-10-01T00:00:00+00:00"
    if message_name in NOT_IN_CATALOG:  # a field the catalog does not list, sent with a value
        assert {r["rule"] for r in out["reasons"]} == {"parameters.unknown"}, out["reasons"]
        return
    assert out["stage"] == "", out["reasons"]  # catalog defaults are valid; other types are allowed
    # The tradestream hash: SHA-256 of the serialized Any, as python3-protobuf serializes it.
    message = pb.decode_strategy(data)
    assert record["strategy_hash"] == hashlib.sha256(message.strategy.parameters.SerializeToString()).hexdigest()


def test_enum_form_and_json_form_are_one_strategy():
    strategy = create_test_strategy()
    by_name = StrategyInspector().decode(create_test_protobuf())
    by_enum = StrategyInspector().decode(create_test_protobuf(enum=True))
    by_json = StrategyInspector().decode(strategy)
    assert by_name["stage"] == by_enum["stage"] == by_json["stage"] == ""
    assert by_name["record"]["strategy_hash"] == by_enum["record"]["strategy_hash"] == \
        by_json["record"]["strategy_hash"]
    assert by_name["record"]["parameters"] == strategy["parameters"]
    assert by_json["message_format"] == "json"


def test_readme_test_vector_from_python():
    data = pb.encode_strategy({"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "current_score": 0.85,
                               "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9},
                               "discovery_start_time": "2024-01-01T00:00:00Z",
                               "discovery_end_time": "2024-01-01T01:00:00Z"})
    assert data.hex() == (
        "0a5212400a36747970652e676f6f676c65617069732e636f6d2f737472617465676965732e4d61636443726f73736f766572"
        "506172616d65746572731206080c101a18091a0e4d4143445f43524f53534f56455211333333333333eb3f1a074254432f55"
        "53442206088081c8ac062a0608909dc8ac06")
    out = StrategyInspector(parameters_layout="tradestream", strategy_hash_scheme="tradestream").decode(data)
    assert out["record"]["strategy_hash"] == "441af2fa3d5a98ac8bec8aac2e2c0dae8a34b0fa7974bfe5ca8fe5a586c967e9"
    assert out["record"]["parameters"] == {
        "protobuf_type": "type.googleapis.com/strategies.MacdCrossoverParameters",
        "protobuf_data": "080c101a1809",
        "raw_parameters": {"type_url": "type.googleapis.com/strategies.MacdCrossoverParameters",
                           "value": "080c101a1809"},
        "named": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9},
    }


@pytest.mark.parametrize("data, rule", [
    (b"\xff\xfe garbage", "format.unrecognized"),
    (bytes.fromhex("0a5212400a36747970"), "protobuf.truncated"),
])
def test_bad_bytes_through_the_python_inspector(data, rule):
    reasons = StrategyInspector().validate(data)
    assert reasons and reasons[0]["rule"] == rule
