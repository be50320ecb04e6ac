"""One validation mechanism for every input: CSV, Parquet and API JSON.

A :class:`RecordSchema` lists typed :class:`Field` s and cross-field :class:`RowCheck` s.
:func:`RecordSchema.parse` turns a frame of raw values (strings, numbers or ``None``) into a typed
frame plus a table of issues, one row per (record, column, reason). Errors make a record
unusable; warnings (e.g. a self-transfer) keep it but are reported. :func:`accept` applies the
policy: strict mode raises, the default moves bad records to a quarantine file. Nothing is
dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

FieldKind = Literal["text", "number", "timestamp", "flag"]
Severity = Literal["error", "warning"]
ISSUE_COLUMNS = ["row", "column", "reason", "value", "severity"]


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
        typed: dict[str, pd.Series] = {}
        issues: list[pd.DataFrame | None] = []
        for f in self.fields:
            if f.name not in raw.columns:
                continue
            values, field_issues = _parse_field(f, raw[f.name])
            typed[f.name] = values
            issues.extend(field_issues)
        extra = [c for c in raw.columns if c not in typed]
        frame = pd.DataFrame(typed, index=raw.index)
        for column in extra:
            frame[column] = raw[column]
        if self.unique_id and self.unique_id in frame.columns:
            ids = frame[self.unique_id]
            dup = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
            issues.append(_issues(dup, self.unique_id, "duplicate id", ids, "error"))
        for check in self.checks:
            if check.column in frame.columns:
                mask = np.asarray(check.bad(frame), dtype=bool)
                issues.append(_issues(mask, check.column, check.reason, frame[check.column],
                                      check.severity))
        found = [i for i in issues if i is not None]
        table = (pd.concat(found, ignore_index=True).sort_values(["row", "column"], kind="stable")
                 .reset_index(drop=True) if found else pd.DataFrame(columns=ISSUE_COLUMNS))
        return ValidationResult(schema=self.name, frame=frame, raw=raw, issues=table)


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
    """The typed frame of all records and the issues found in them."""

    schema: str
    frame: pd.DataFrame
    raw: pd.DataFrame
    issues: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ISSUE_COLUMNS))

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


def _issues(mask: np.ndarray, column: str, reason: str, values: pd.Series,
            severity: Severity) -> pd.DataFrame | None:
    """The issues of the records where ``mask`` is true (None when there are none)."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return None
    return pd.DataFrame({
        "row": rows.astype(np.int64),
        "column": column,
        "reason": reason,
        "value": values.iloc[rows].astype(object).map(_show).to_numpy(dtype=object),
        "severity": severity,
    })


def _show(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _blank(values: pd.Series) -> np.ndarray:
    as_text = values.astype("string").str.strip()
    return (values.isna() | (as_text == "")).to_numpy(dtype=bool)


def _parse_field(f: Field, values: pd.Series) -> tuple[pd.Series, list[pd.DataFrame | None]]:
    blank = _blank(values)
    issues = []
    if f.required:
        issues.append(_issues(blank, f.name, "missing value", values, "error"))
    if f.kind == "text":
        typed = values.astype("string").str.strip()
        if f.pad_digits:
            digits = typed.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
            typed = typed.where(~digits, typed.str.zfill(f.pad_digits))
        typed = typed.where(~blank, pd.NA).astype(object)
        if f.allowed is not None:
            unknown = ~blank & ~typed.isin(f.allowed).to_numpy()
            issues.append(_issues(unknown, f.name, f"unknown {f.name.replace('_', ' ')}",
                                  values, "error"))
        return typed, issues
    if f.kind == "timestamp":
        typed = _parse_timestamps(values, f.timestamp_formats)
        bad = ~blank & typed.isna().to_numpy()
        issues.append(_issues(bad, f.name, "unparseable timestamp", values, "error"))
        return typed, issues
    typed = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = ~blank & typed.isna().to_numpy()
    issues.append(_issues(bad, f.name, "not a number", values, "error"))
    finite = typed.to_numpy()
    inf = np.isinf(finite)
    issues.append(_issues(inf, f.name, "infinite number", values, "error"))
    if f.min_value is not None:
        low = ~np.isnan(finite) & (finite < f.min_value)
        reason = "negative value" if f.min_value == 0 else f"below minimum {f.min_value:g}"
        issues.append(_issues(low, f.name, reason, values, "error"))
    if f.kind == "flag":
        odd = ~np.isnan(finite) & ~np.isin(finite, [0.0, 1.0])
        issues.append(_issues(odd, f.name, "flag must be 0 or 1", values, "error"))
        typed = typed.astype("Int8") if np.isnan(finite).any() else typed.astype(np.int8)
    return typed, issues


def _parse_timestamps(values: pd.Series, formats: Sequence[str]) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    todo = parsed.isna() & text.notna()
    if todo.any():  # ISO 8601 fallback, e.g. API JSON "2022-09-01T00:20:00"
        iso = pd.to_datetime(text[todo], format="ISO8601", errors="coerce", utc=True)
        parsed[todo] = iso.dt.tz_localize(None)
    return parsed
