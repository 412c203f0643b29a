"""Messages for the core: dicts as the JSON the pipeline would receive, text and bytes passed through."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, Union

Strategy = Union[dict, str, bytes]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # naive datetimes are UTC here, as in the database
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> Union[str, bytes]:
    """A dict (or list) as JSON text; a str is taken as JSON text already, bytes (JSON or protobuf
    DiscoveredStrategy, as they come from Kafka) are passed on unchanged."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value
    # allow_nan: NaN and Infinity are written as such and then refused by the core, with a reason.
    return json.dumps(value, default=_default, allow_nan=True)
