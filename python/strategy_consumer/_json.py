"""JSON text for the core: dicts as the pipeline would receive them, strings passed through."""

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


def to_json(value: Any) -> str:
    """A dict (or list) as JSON text; a str or bytes is taken as JSON text already."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    if isinstance(value, str):
        return value
    # allow_nan: NaN and Infinity are written as such and then refused by the core, with a reason.
    return json.dumps(value, default=_default, allow_nan=True)
