"""Validation of JSON records value by value: the fast path of the API.

:func:`parse_records` returns exactly what :meth:`RecordSchema.parse` returns for the records as
a frame (``pd.DataFrame.from_records``, a field absent from every record being a column of
``None``): the same typed frame and the same issues. Only the conversion of raw values differs:
pandas 3 spends about half a millisecond per text column whatever its length, while plain
values convert in microseconds (measured: 1.5 ms instead of 10 ms for one transaction, 8 ms
instead of 17 ms for 1,000, still ahead at 8,000). Times written as the API's ISO seconds
("2022-09-01T00:20:00") are read by numpy when no format of the field could read them (pandas
spends a third of a millisecond per format tried, even for one value). The rules run once, in
:meth:`RecordSchema.check`. Whatever this conversion does not reproduce exactly (strings in
number fields, booleans, non-string text, keys outside the schema, more than
:data:`MAX_RECORDS` records) is converted by pandas instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from operator import not_
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.validation import (
    Converted,
    Field,
    RecordSchema,
    ValidationResult,
    parse_times,
)

MAX_RECORDS = 10_000  # the API's default request limit
_TEXT_TYPES = frozenset({str, type(None)})
#: ISO times to the second that are within datetime64[ns] (1678-2261) and whose fields are in
#: range; numpy rejects the few left that are not dates (31 February) and pandas reads those.
_ISO_SECONDS = re.compile(r"(?:1(?:6(?:7[89]|[89]\d)|[7-9]\d\d)|2(?:[01]\d\d|2[0-5]\d|26[01]))"
                          r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
                          r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d")
#: Format directives that read letters: with one of them (or a literal T) a format could read
#: an ISO time, and the order of the formats must decide.
_LETTER_DIRECTIVES = ("%a", "%A", "%b", "%B", "%c", "%h", "%p", "%x", "%X", "%z", "%Z")
_INT64 = (-(2**63), 2**63 - 1)

Records = Sequence[Mapping[str, Any]]


def parse_records(schema: RecordSchema, records: Records,
                  fill: Mapping[str, Callable[[int], Sequence[Any]]] | None = None,
                  ) -> ValidationResult:
    """Type the records' fields and collect their issues, as ``schema.parse`` does. ``fill``:
    fields whose missing values (absent, null or NaN) are made by a function, called once with
    how many are missing (e.g. new ids), as if the records had held them."""
    made = _made(records, fill or {})

    def frame() -> pd.DataFrame:
        raw = pd.DataFrame.from_records(_with_made(records, made))
        return raw.assign(**dict.fromkeys(f.name for f in schema.fields
                                          if f.name not in raw.columns))

    converted = convert_records(schema, records, made)
    if converted is None:
        return schema.parse(frame())
    return schema.check(len(records), *converted, raw=frame)


def convert_records(schema: RecordSchema, records: Records,
                    made: Mapping[str, Mapping[int, Any]] | None = None) -> tuple[
        dict[str, Converted], dict[str, np.ndarray]] | None:
    """Each field's converted values and the raw values its issues quote, or None when the
    records are not up to :data:`MAX_RECORDS` of plain JSON values of the schema's fields
    (``made``: values standing in for missing ones, by field and record index)."""
    if len(records) > MAX_RECORDS or not set(schema.columns).issuperset(chain(*records)):
        return None
    made = made or {}
    converted, shown = {}, {}
    for f in schema.fields:
        values = list(map(dict.get, records, repeat(f.name)))
        for i, value in made.get(f.name, {}).items():
            values[i] = value
        result = _CONVERTERS[f.kind](f, values)
        if result is None:
            return None
        converted[f.name] = result
        shown[f.name] = _as_column(f, values)
    return converted, shown


def _made(records: Records,
          fill: Mapping[str, Callable[[int], Sequence[Any]]]) -> dict[str, dict[int, Any]]:
    """The values made for each filled field's missing ones, by record index."""
    made = {}
    for name, make in fill.items():
        missing = [i for i, value in enumerate(map(dict.get, records, repeat(name)))
                   if is_null(value)]
        made[name] = dict(zip(missing, make(len(missing)), strict=True))
    return made


def is_null(value: Any) -> bool:
    """Whether a record's value is missing: None, NaN, NA or NaT (what a frame of the records
    would call missing; text is never)."""
    return value is None or (type(value) is not str and pd.api.types.is_scalar(value)
                             and bool(pd.isna(value)))


def _with_made(records: Records, made: Mapping[str, Mapping[int, Any]]) -> list[Any]:
    """The records, each one with made values a copy holding them."""
    copies = list(records)
    for name, values in made.items():
        for i, value in values.items():
            copies[i] = {**copies[i], name: value}
    return copies


def _text(f: Field, values: list[Any]) -> Converted | None:
    kinds = set(map(type, values))
    if not kinds <= _TEXT_TYPES:
        return None
    texts = (list(map(str.strip, values)) if kinds == {str}
             else [value.strip() if value else "" for value in values])
    if f.pad_digits:  # str.isdecimal: what the pattern \d+ matches in full
        texts = [text.zfill(f.pad_digits) if text.isdecimal() else text for text in texts]
    blank = np.fromiter(map(not_, texts), dtype=bool, count=len(texts))
    typed = np.array(texts, dtype=object)
    if blank.any():
        typed[blank] = pd.NA
    return Converted(typed, blank)


def _number(_: Field, values: list[Any]) -> Converted | None:
    typed = []
    for value in values:
        if value is None:
            typed.append(np.nan)
        elif isinstance(value, float) or (type(value) is int
                                          and _INT64[0] <= value <= _INT64[1]):
            typed.append(float(value))
        else:
            return None
    numbers = np.array(typed, dtype=np.float64)
    return Converted(numbers, np.isnan(numbers))


def _timestamp(f: Field, values: list[Any]) -> Converted | None:
    if any(value is not None and type(value) is not str for value in values):
        return None
    text = np.array([None if value is None else value.strip() for value in values], dtype=object)
    return Converted(_times(f, text), np.array([not t for t in text], dtype=bool))


def _times(f: Field, text: np.ndarray) -> np.ndarray:
    """``parse_times`` of the texts: by numpy when every one is an ISO time to the second and
    no format of the field could read such a text (the result is then the same)."""
    if (_only_iso_reads(f.timestamp_formats)
            and all(t is not None and _ISO_SECONDS.fullmatch(t) for t in text)):
        try:
            return np.array(text.tolist(), dtype="datetime64[s]").astype("datetime64[ns]")
        except ValueError:  # a day the month does not have
            pass
    return parse_times(text, f.timestamp_formats)


def _only_iso_reads(formats: Sequence[str]) -> bool:
    """Whether no format can read "2022-09-01T00:20:00" (its T needs a literal T or a
    directive reading letters), so that parse_times reads it as ISO 8601."""
    return not any("T" in fmt or any(d in fmt for d in _LETTER_DIRECTIVES)
                   for fmt in formats)


def _as_column(f: Field, values: list[Any]) -> np.ndarray:
    """Raw values as a frame column holds them: whole numbers next to a fraction or a missing
    value become floats, as in a float64 column."""
    numeric = f.kind in ("number", "flag")
    if numeric and not all(type(value) is int for value in values):
        values = [float(value) if type(value) is int else value for value in values]
    return np.array(values, dtype=object)


_CONVERTERS: dict[str, Callable[[Field, list[Any]], Converted | None]] = {
    "text": _text, "number": _number, "flag": _number, "timestamp": _timestamp,
}
