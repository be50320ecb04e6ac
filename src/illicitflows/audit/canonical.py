"""Canonical JSON: one exact text per value, so hashes of records and rows are reproducible."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np
import pandas as pd

_PLAIN = frozenset({str, int, bool, type(None)})
_LITERALS = {None: "null", True: "true", False: "false"}
_NULL = _LITERALS[None]


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


def frame_texts(frame: pd.DataFrame) -> list[str]:
    """The canonical JSON text of each row of a frame whose columns are named by text: what
    :func:`canonical_json` writes for the row as a dict, built column by column (the key
    names once)."""
    names = sorted(frame.columns)
    template = "{" + ",".join(encode_basestring_ascii(name).replace("%", "%%") + ":%s"
                              for name in names) + "}"
    columns = [column_texts(frame[name]) for name in names]
    return [template % row for row in zip(*columns, strict=True)]


def column_texts(column: pd.Series) -> list[str]:
    """The canonical JSON text of each value of a column (the texts of :func:`canonical_json`:
    non-finite floats and NaT null, times ISO 8601); text, floats and whole-second times
    written at C speed."""
    if column.dtype == object:
        plain = column.tolist()
        if all(type(value) is str for value in plain):
            return list(map(encode_basestring_ascii, plain))
    elif not isinstance(column.dtype, np.dtype) and column.isna().all():
        return [_NULL] * len(column)  # e.g. a nullable label no record carries
    plain = plain_values(column)
    return plain_texts(plain) or list(map(dumps, plain))


def plain_values(column: pd.Series) -> list[Any]:
    """:func:`jsonable` of a column's values (a history row's event time, say); float and
    whole-second time columns converted by numpy (the same values: non-finite floats and NaT
    become None, times ISO 8601)."""
    if not isinstance(column.dtype, np.dtype):  # nullable and time zone aware ones
        return jsonable(column.tolist())
    values = column.to_numpy()
    if values.dtype == np.float64:
        plain = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            plain[i] = None
        return plain
    if values.dtype.kind == "M":
        seconds = values.astype("datetime64[s]")
        if (np.isnat(values) | (seconds == values)).all():
            texts = np.datetime_as_string(seconds, unit="s").tolist()
            return [None if text == "NaT" else text for text in texts]
    return jsonable(column.tolist())


def plain_texts(values: list[Any]) -> list[str] | None:
    """The canonical JSON of each value, or None when one is not plain (text, null, booleans,
    integers, finite floats); a column of one type is written at C speed."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(encode_basestring_ascii, values))
    if kinds == {float}:
        return list(map(float.__repr__, values)) if all(map(math.isfinite, values)) else None
    if kinds == {int}:
        return list(map(int.__repr__, values))
    if not kinds <= _PLAIN | {float}:
        return None
    if float in kinds and not all(math.isfinite(v) for v in values if type(v) is float):
        return None
    return [_LITERALS[v] if v is None or type(v) is bool else
            encode_basestring_ascii(v) if type(v) is str else repr(v) for v in values]


def canonical_json(value: Any) -> str:
    """Canonical JSON text of any supported value (see :func:`jsonable`)."""
    return dumps(jsonable(value))


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()
