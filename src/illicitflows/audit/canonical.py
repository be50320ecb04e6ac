"""Canonical JSON: one exact text per value, so hashes of records and rows are reproducible."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd

_PLAIN = frozenset({str, int, bool, type(None)})


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types.

    Timestamps become ISO-8601 (aware ones in UTC), NaN / NaT / NA become null, numpy scalars and
    arrays are unwrapped, tuples become lists and mapping keys strings.
    """
    kind = type(value)
    if kind in _PLAIN or isinstance(value, str | int):
        return value
    if value is pd.NA:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key if type(key) is str else str(key): _item(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_item(item) for item in value]
    if isinstance(value, datetime):
        if value != value:  # pandas.NaT
            return None
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    raise TypeError(f"cannot put a {kind.__name__} into canonical JSON")


def _item(value: Any) -> Any:
    """:func:`jsonable` of a container's item, without a call for plain ones (most are)."""
    kind = type(value)
    if kind in _PLAIN or (kind is float and math.isfinite(value)):
        return value
    return jsonable(value)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def dumps(plain: Any) -> str:
    """Canonical text of already-plain JSON data: sorted keys, no spaces, ASCII (``\\uXXXX``
    escapes), no NaN."""
    return _ENCODER.encode(plain)


def canonical_json(value: Any) -> str:
    """Canonical JSON text of any supported value (see :func:`jsonable`)."""
    return dumps(jsonable(value))


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()
