"""Canonical JSON: one exact text per value, so hashes of records and rows are reproducible."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from json.encoder import encode_basestring_ascii
from typing import Any

import pandas as pd

_PLAIN = frozenset({str, int, bool, type(None)})
_LITERALS = {None: "null", True: "true", False: "false"}


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


def dumps_records(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """``dumps(jsonable(record))`` of each record. Records with the same text keys in the same
    order and plain values only (text, null, booleans, integers, finite floats: what a
    request's records hold) are written column by column, the key names once; others one
    by one."""
    names = list(records[0]) if records else []
    if (not names or not all(type(name) is str for name in names)
            or any(list(record) != names for record in records)):
        return [dumps(jsonable(record)) for record in records]
    columns = [plain_texts([record[name] for record in records]) for name in names]
    if any(column is None for column in columns):
        return [dumps(jsonable(record)) for record in records]
    order = sorted(range(len(names)), key=names.__getitem__)
    template = "{" + ",".join(encode_basestring_ascii(names[i]).replace("%", "%%") + ":%s"
                              for i in order) + "}"
    return [template % values for values in zip(*(columns[i] for i in order), strict=True)]


def plain_texts(values: list[Any]) -> list[str] | None:
    """The canonical JSON of each value, or None when one is not plain (text, null, booleans,
    integers, finite floats); a column of one type is written at C speed."""
    kinds = set(map(type, values))
    if not kinds <= _PLAIN | {float}:
        return None
    if float in kinds and not all(math.isfinite(v) for v in values if type(v) is float):
        return None
    if kinds == {str}:
        return list(map(encode_basestring_ascii, values))
    if kinds == {float}:
        return list(map(float.__repr__, values))
    return [_LITERALS[v] if v is None or type(v) is bool else
            encode_basestring_ascii(v) if type(v) is str else repr(v) for v in values]


def canonical_json(value: Any) -> str:
    """Canonical JSON text of any supported value (see :func:`jsonable`)."""
    return dumps(jsonable(value))


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()
