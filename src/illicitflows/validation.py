"""One validation mechanism for every input: CSV, Parquet and API JSON.

A :class:`RecordSchema` lists typed :class:`Field` s and cross-field :class:`RowCheck` s.
:func:`RecordSchema.parse` turns a frame of raw values (strings, numbers or ``None``) into a typed
frame plus a table of issues, one row per (record, column, reason). Errors make a record
unusable; warnings (e.g. a self-transfer) keep it but are reported. :func:`accept` applies the
policy: strict mode raises, the default moves bad records to a quarantine file. Nothing is
dropped silently.

Parsing is two steps. Conversion turns each field's raw values into typed arrays
(:class:`Converted`); here it runs per column with pandas, and
:mod:`illicitflows.record_validation` runs it per value for API JSON records. The rules
(:meth:`RecordSchema.check`: missing values, bad numbers, minimums, allowed values, flags,
timestamps, duplicate ids, row checks) exist once and run on the converted arrays of either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

FieldKind = Literal["text", "number", "timestamp", "flag"]
Severity = Literal["error", "warning"]
ISSUE_COLUMNS = ["row", "column", "reason", "value", "severity"]
MISSING = "missing value"
NOT_A_NUMBER = "not a number"
INFINITE = "infinite number"
NOT_A_FLAG = "flag must be 0 or 1"
UNPARSEABLE = "unparseable timestamp"
DUPLICATE = "duplicate id"
_NAT = np.datetime64("NaT", "ns")


@dataclass(frozen=True)
class Field:
    """A typed input column with its constraints."""

    name: str
    kind: FieldKind
    required: bool = True
    min_value: float | None = None
    allowed: frozenset[str] | None = None
    timestamp_formats: tuple[str, ...] = ()
    pad_digits: int | None = None  # left-pad numeric codes with zeros (HS codes, bank ids)

    @property
    def unknown_reason(self) -> str:
        return f"unknown {self.name.replace('_', ' ')}"

    @property
    def low_reason(self) -> str:
        return "negative value" if self.min_value == 0 else f"below minimum {self.min_value:g}"


@dataclass(frozen=True)
class Converted:
    """One field's values, typed: text as objects (``pd.NA`` when blank), numbers and flags as
    float64 (NaN when blank or unreadable), timestamps as datetime64[ns] (NaT likewise);
    ``blank`` marks the records without a value."""

    values: np.ndarray
    blank: np.ndarray


@dataclass(frozen=True)
class RowCheck:
    """A cross-field rule: ``bad(frame)`` is a boolean mask of offending records."""

    column: str
    reason: str
    bad: Callable[[pd.DataFrame], np.ndarray]
    severity: Severity = "error"


@dataclass(frozen=True)
class RecordSchema:
    """Fields, cross-field checks and an optional unique id column of one record type."""

    name: str
    fields: tuple[Field, ...]
    checks: tuple[RowCheck, ...] = ()
    unique_id: str | None = None

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def parse(self, raw: pd.DataFrame) -> ValidationResult:
        """Type every field of ``raw`` and collect the issues of every record."""
        missing = [f.name for f in self.fields if f.required and f.name not in raw.columns]
        if missing:
            raise SchemaError(f"{self.name}: missing required column(s): {', '.join(missing)}")
        raw = raw.reset_index(drop=True)
        converted = {f.name: convert_column(f, raw[f.name]) for f in self.fields
                     if f.name in raw.columns}
        shown = {name: raw[name] for name in converted}
        extra = raw[[c for c in raw.columns if c not in converted]]
        return self.check(len(raw), converted, shown, raw, extra)

    def check(self, rows: int, converted: Mapping[str, Converted],
              shown: Mapping[str, pd.Series | np.ndarray],
              raw: pd.DataFrame | Callable[[], pd.DataFrame],
              extra: pd.DataFrame | None = None) -> ValidationResult:
        """Apply every rule to ``rows`` records' converted fields: each field's own rules,
        duplicate ids and the row checks on the typed frame. ``shown`` holds the raw values
        that issues quote, ``extra`` the non-schema columns kept as they are."""
        issues: list[pd.DataFrame | None] = []
        typed: dict[str, pd.Series | np.ndarray | pd.api.extensions.ExtensionArray] = {}
        index = pd.RangeIndex(rows)
        for f in self.fields:
            if f.name in converted:
                issues.extend(_field_issues(f, converted[f.name], shown[f.name]))
                typed[f.name] = _typed(f, converted[f.name].values, index)
        frame = pd.DataFrame(typed, index=index)
        for column in [] if extra is None else extra.columns:
            frame[column] = extra[column]
        if self.unique_id and self.unique_id in frame.columns:
            ids = frame[self.unique_id]
            dup = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
            issues.append(_issues(dup, self.unique_id, DUPLICATE, ids, "error"))
        for check in self.checks:
            if check.column in frame.columns:
                mask = np.asarray(check.bad(frame), dtype=bool)
                issues.append(_issues(mask, check.column, check.reason, frame[check.column],
                                      check.severity))
        found = [i for i in issues if i is not None]
        if len(found) > 1:
            table = (pd.concat(found, ignore_index=True)
                     .sort_values(["row", "column"], kind="stable").reset_index(drop=True))
        else:  # one rule's issues are in row order already
            table = found[0] if found else no_issues()
        return ValidationResult(schema=self.name, frame=frame, source=raw, issues=table)


class SchemaError(ValueError):
    """The input does not have the shape of the schema at all (e.g. a missing column)."""


class LateRecordError(ValueError):
    """A record is older than the history already processed (its features would see its
    future); each domain's feature builder raises it, naming the row and the time field."""


class ValidationError(ValueError):
    """Strict mode found bad records; the message names each record and field."""

    def __init__(self, result: ValidationResult, limit: int = 20) -> None:
        self.result = result
        super().__init__(result.describe(limit))


@dataclass
class ValidationResult:
    """The typed frame of all records and the issues found in them; ``source`` is the raw
    frame, or a function making it when first needed (see :attr:`raw`)."""

    schema: str
    frame: pd.DataFrame
    source: pd.DataFrame | Callable[[], pd.DataFrame] = field(repr=False)
    issues: pd.DataFrame = field(default_factory=lambda: no_issues())

    @cached_property
    def raw(self) -> pd.DataFrame:
        """The records as given (the quarantine file shows these values)."""
        return self.source if isinstance(self.source, pd.DataFrame) else self.source()

    @property
    def errors(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "warning"]

    @property
    def bad_rows(self) -> np.ndarray:
        return np.unique(self.errors["row"].to_numpy(dtype=np.int64))

    def describe(self, limit: int = 20) -> str:
        """A readable list of issues: ``row 3, column amount_paid: negative amount ('-5')``."""
        errors = self.errors
        head = (f"{self.schema}: {len(self.bad_rows)} bad record(s) of {len(self.frame)}, "
                f"{len(errors)} error(s), {len(self.warnings)} warning(s)")
        lines = [head]
        for issue in self.issues.head(limit).itertuples(index=False):
            lines.append(f"  row {issue.row}, column {issue.column}: {issue.reason} "
                         f"({issue.value!r}) [{issue.severity}]")
        if len(self.issues) > limit:
            lines.append(f"  ... {len(self.issues) - limit} more")
        return "\n".join(lines)

    def summary(self) -> dict[str, object]:
        """Counts per (column, reason) for printing and logging."""
        counts = (self.issues.groupby(["severity", "column", "reason"]).size()
                  .rename("count").reset_index())
        return {
            "schema": self.schema,
            "records": int(len(self.frame)),
            "bad_records": int(len(self.bad_rows)),
            "issues": counts.to_dict(orient="records"),
        }


_NO_ISSUES = pd.DataFrame(columns=ISSUE_COLUMNS)


def no_issues() -> pd.DataFrame:
    """An empty issue table (a copy: building one costs a hundred times more)."""
    return _NO_ISSUES.copy()


def accept(result: ValidationResult, strict: bool = False,
           quarantine: Path | None = None) -> pd.DataFrame:
    """Apply the input policy and return the good records (original order, fresh index).

    Strict mode raises :class:`ValidationError` on any error. Otherwise bad records are written
    to ``quarantine`` (raw values plus ``_row`` and ``_issues``); without a quarantine path,
    bad records raise too, so that nothing is ever dropped unseen.
    """
    bad = result.bad_rows
    if len(bad) == 0:
        return result.frame.reset_index(drop=True)
    if strict or quarantine is None:
        raise ValidationError(result)
    write_quarantine(result, quarantine)
    keep = np.ones(len(result.frame), dtype=bool)
    keep[bad] = False
    return result.frame[keep].reset_index(drop=True)


def write_quarantine(result: ValidationResult, path: Path) -> Path:
    """Write the bad records, their original values and their reasons to ``path`` (CSV)."""
    errors = result.errors
    reasons = (errors["column"] + ": " + errors["reason"]).groupby(errors["row"]).agg("; ".join)
    bad = result.raw.iloc[reasons.index.to_numpy()].copy()
    bad.insert(0, "_issues", reasons.to_numpy())
    bad.insert(0, "_row", reasons.index.to_numpy())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad.to_csv(path, index=False)
    return path


def _issues(mask: np.ndarray, column: str, reason: str, values: pd.Series | np.ndarray,
            severity: Severity) -> pd.DataFrame | None:
    """The issues of the records where ``mask`` is true (None when there are none)."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return None
    quoted = values.iloc[rows].astype(object) if isinstance(values, pd.Series) else values[rows]
    return pd.DataFrame({
        "row": rows.astype(np.int64),
        "column": column,
        "reason": reason,
        "value": np.array([_show(v) for v in quoted], dtype=object),
        "severity": severity,
    })


def _show(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _field_issues(f: Field, converted: Converted,
                  shown: pd.Series | np.ndarray) -> list[pd.DataFrame | None]:
    """The rules of one field, in the order their issues are listed."""
    values, blank = converted.values, converted.blank
    issues = [_issues(blank, f.name, MISSING, shown, "error")] if f.required else []
    if f.kind == "text":
        if f.allowed is not None:
            known = np.fromiter(map(f.allowed.__contains__, values), dtype=bool,
                                count=len(values))
            issues.append(_issues(~blank & ~known, f.name, f.unknown_reason, shown, "error"))
        return issues
    if f.kind == "timestamp":
        issues.append(_issues(~blank & np.isnat(values), f.name, UNPARSEABLE, shown, "error"))
        return issues
    known = ~np.isnan(values)
    issues.append(_issues(~blank & ~known, f.name, NOT_A_NUMBER, shown, "error"))
    issues.append(_issues(np.isinf(values), f.name, INFINITE, shown, "error"))
    if f.min_value is not None:
        issues.append(_issues(known & (values < f.min_value), f.name, f.low_reason, shown,
                              "error"))
    if f.kind == "flag":
        issues.append(_issues(known & ~_is_flag(values), f.name, NOT_A_FLAG, shown, "error"))
    return issues


def _is_flag(values: np.ndarray) -> np.ndarray:
    return np.isin(values, [0.0, 1.0])


def _typed(f: Field, values: np.ndarray,
           index: pd.Index) -> pd.Series | np.ndarray | pd.api.extensions.ExtensionArray:
    """The frame column of a converted field: text stays objects (a frame would infer str);
    flags are int8, or Int8 when one is missing. A flag other than 0 or 1, an error already,
    becomes 0 in int8 and missing in Int8."""
    if f.kind == "text":
        return pd.Series(values, index=index, dtype=object, copy=False)
    if f.kind != "flag":
        return values
    flag = _is_flag(values)
    if not np.isnan(values).any():
        return np.where(flag, values, 0.0).astype(np.int8)
    return pd.array(np.where(flag, values, np.nan), dtype="Float64").astype("Int8")


def convert_column(f: Field, values: pd.Series) -> Converted:
    """Convert one raw column with pandas (the path for files and large batches)."""
    blank = _blank(values)
    if f.kind == "text":
        typed = values.astype("string").str.strip()
        if f.pad_digits:
            digits = typed.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
            typed = typed.where(~digits, typed.str.zfill(f.pad_digits))
        return Converted(typed.where(~blank, pd.NA).to_numpy(dtype=object), blank)
    if f.kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(values):
            return Converted(values.astype("datetime64[ns]").to_numpy(), blank)
        text = values.astype("string").str.strip().to_numpy(dtype=object, na_value=None)
        return Converted(parse_times(text, f.timestamp_formats), blank)
    return Converted(_numbers(f, values), blank)


def _numbers(f: Field, values: pd.Series) -> np.ndarray:
    """A number or flag column as float64, NaN where a value is not a number: text that
    does not read as one, a boolean in a number field (true is no amount), an integer beyond
    float64 (JSON has no bound)."""
    if f.kind == "number" and pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan)
    if values.dtype == object:
        values = values.map(_number_or_nan if f.kind == "number" else _flag_or_nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _flag_or_nan(value: object) -> object:
    """``value``, with an integer beyond float64 as NaN."""
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return np.nan
    return value


def _number_or_nan(value: object) -> object:
    """``value``, with booleans and integers beyond float64 as NaN."""
    return np.nan if isinstance(value, bool | np.bool_) else _flag_or_nan(value)


def _blank(values: pd.Series) -> np.ndarray:
    as_text = values.astype("string").str.strip()
    return (values.isna() | (as_text == "")).to_numpy(dtype=bool)


def parse_times(text: np.ndarray, formats: Sequence[str]) -> np.ndarray:
    """Times of stripped texts (None when absent), as datetime64[ns]: by the first of
    ``formats`` giving a representable time, else ISO 8601 (e.g. API JSON
    "2022-09-01T00:20:00", offsets converted to UTC), else NaT."""
    parsed = np.full(len(text), _NAT)
    todo = np.fromiter((t is not None for t in text), dtype=bool, count=len(text))
    for fmt in formats:
        if not todo.any():
            break
        parsed[todo] = _representable(pd.to_datetime(text[todo], format=fmt, errors="coerce"))
        todo &= np.isnat(parsed)
    if todo.any():
        iso = pd.to_datetime(text[todo], format="ISO8601", errors="coerce", utc=True)
        parsed[todo] = _representable(iso.tz_localize(None))
    return parsed


def _representable(found: pd.DatetimeIndex) -> np.ndarray:
    """Parsed times as datetime64[ns]; NaT for those outside its range (about 1677 to 2262)."""
    try:
        return found.as_unit("ns").to_numpy()
    except pd.errors.OutOfBoundsDatetime:
        inside = (found >= pd.Timestamp.min) & (found <= pd.Timestamp.max)
        return found.where(inside).as_unit("ns").to_numpy()
