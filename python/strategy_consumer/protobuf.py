"""The discovery pipeline's protobuf messages (``discovery.DiscoveredStrategy``), built with python3-protobuf.

The schema is the one compiled into the core (proto/discovery.proto, proto/strategies.proto): ``_core`` hands
out its FileDescriptorProtos and the message classes are made from them in a private descriptor pool, so Python
and C++ can never disagree about a field number and nothing is generated into the source tree.

>>> from strategy_consumer.protobuf import encode_strategy
>>> data = encode_strategy({"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER",
...                         "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9},
...                         "current_score": 0.85})
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping, Optional, Union

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

from . import _core

__all__ = ["TYPE_URL_PREFIX", "parameter_messages", "message_class", "parameters_message", "parameter_message_of",
           "encode_strategy", "decode_strategy", "strategy_type_number"]

TYPE_URL_PREFIX = "type.googleapis.com/"


@lru_cache(maxsize=None)
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, timestamp_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    for blob in _core.protobuf_schema():
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(blob))
    return pool


@lru_cache(maxsize=None)
def message_class(full_name: str) -> type:
    """The class of a schema message, e.g. ``message_class("strategies.MacdCrossoverParameters")``."""
    descriptor = _pool().FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(_pool()).GetPrototype(descriptor)  # protobuf < 4.21.8


def parameter_messages() -> list[str]:
    """The 62 parameter messages of strategies.proto ("MacdCrossoverParameters", ...)."""
    return list(_core.parameter_messages())


@lru_cache(maxsize=None)
def _catalog_messages() -> dict:
    return {name: spec["parameter_message"]
            for name, spec in _core.StrategyInspector("", False).strategy_types.items()}


def parameter_message_of(strategy_type: str) -> str:
    """The parameter message of a catalog type (BBAND_W_R is the catalog's BBAND_WILLIAMS_R)."""
    catalog = _catalog_messages()
    name = "BBAND_WILLIAMS_R" if strategy_type == "BBAND_W_R" else strategy_type
    if name not in catalog or not catalog[name]:
        raise KeyError(f"{strategy_type!r} has no parameter message in the catalog; pass parameter_message=")
    return catalog[name]


def strategy_type_number(name: str) -> int:
    """The number of a type in the old StrategyType enum (messages from before 2026-01). The enum spells the
    catalog's BBAND_WILLIAMS_R as BBAND_W_R."""
    enum = _pool().FindEnumTypeByName("strategies.StrategyType")
    if name not in enum.values_by_name and name == "BBAND_WILLIAMS_R":
        name = "BBAND_W_R"
    return enum.values_by_name[name].number


def parameters_message(message_name: str, values: Mapping[str, Any]):
    """A parameter message (``strategies.<message_name>``) holding the named values."""
    message = message_class("strategies." + message_name)()
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, name).update(value)
        elif field.label == field.LABEL_REPEATED:
            getattr(message, name).extend(_scalar(field, v) for v in value)
        else:
            setattr(message, name, _scalar(field, value))
    return message


def _scalar(field, value):
    if field.cpp_type in (field.CPPTYPE_INT32, field.CPPTYPE_INT64) and isinstance(value, float) \
            and value.is_integer():
        return int(value)
    return value


def _timestamp(message, value: Union[str, datetime]) -> None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    message.seconds = calendar.timegm(value.utctimetuple())
    message.nanos = value.microsecond * 1000


def encode_strategy(strategy: Mapping[str, Any], *, enum: bool = False,
                    parameter_message: Optional[str] = None) -> bytes:
    """A strategy (the JSON message's fields: symbol, strategy_type, parameters, score or current_score,
    discovery_start_time, discovery_end_time) as the discovery pipeline publishes it: the binary encoding of
    ``discovery.DiscoveredStrategy``. ``enum=True`` writes the type as the old enum (field 1, as messages before
    2026-01 did) instead of strategy_name. Performance metrics have no place in the message and are dropped."""
    message_name = parameter_message or parameter_message_of(strategy["strategy_type"])
    params = parameters_message(message_name, strategy.get("parameters") or {})
    out = message_class("discovery.DiscoveredStrategy")()
    if enum:
        out.strategy.type = strategy_type_number(strategy["strategy_type"])
    else:
        out.strategy.strategy_name = strategy["strategy_type"]
    out.strategy.parameters.type_url = TYPE_URL_PREFIX + params.DESCRIPTOR.full_name
    out.strategy.parameters.value = params.SerializeToString(deterministic=True)
    score = strategy.get("current_score", strategy.get("score"))
    if score is not None:
        out.score = float(score)
    out.symbol = strategy["symbol"]
    if strategy.get("discovery_start_time"):
        _timestamp(out.start_time, strategy["discovery_start_time"])
    if strategy.get("discovery_end_time"):
        _timestamp(out.end_time, strategy["discovery_end_time"])
    return out.SerializeToString(deterministic=True)


def decode_strategy(data: bytes):
    """The DiscoveredStrategy message of these bytes (python3-protobuf's parser, for tests and inspection)."""
    message = message_class("discovery.DiscoveredStrategy")()
    message.ParseFromString(data)
    return message
