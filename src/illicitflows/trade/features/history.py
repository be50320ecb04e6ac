"""The causal history of the trade features: what was declared before each declaration.

Keys (a party, a pair of parties, an identical consignment...) are 64-bit hashes of their
column values. Two tables serve the features:

- :class:`KeyedCounts`: per key, how many declarations (or how much value) arrived on days
  strictly before a given day, and the first such day. It grows with every declaration the
  builder transforms, in date order.
- :class:`Findings`: per key, inspected declarations and fraud findings with the day each became
  known (declaration day + label lag). Only labelled training rows feed it: labels of scored
  declarations are unknown when they are scored.

A day is a whole number of days since 1900-01-01. Events on the last day seen stay apart
("open") until a later day arrives, so a day split over several transform calls gives the same
features as one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NO_DAY = np.iinfo(np.int64).max
EPOCH = np.datetime64("1900-01-01", "D")
_DAY_BITS = 20  # days since 1900 fit in 20 bits until the year 4770


def days_since_epoch(dates: pd.Series) -> np.ndarray:
    """Whole days since 1900-01-01 of a datetime column."""
    days = (dates.to_numpy(dtype="datetime64[D]") - EPOCH).astype(np.int64)
    if len(days) and (days.min() < 0 or days.max() >= 1 << _DAY_BITS):
        raise ValueError("declaration dates must lie between 1900 and 4770")
    return days


def key_hash(columns: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of the given key columns."""
    return pd.util.hash_pandas_object(columns, index=False).to_numpy(dtype=np.uint64)


class KeyIndex:
    """Dense codes for key hashes, assigned in order of first appearance."""

    def __init__(self) -> None:
        self.index = pd.Index(np.empty(0, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.index)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Codes of known keys, -1 for unknown ones."""
        return self.index.get_indexer(hashes).astype(np.int64)

    def add(self, hashes: np.ndarray) -> np.ndarray:
        """Codes of the keys, assigning new codes to unknown ones."""
        codes = self.lookup(hashes)
        new = pd.unique(hashes[codes < 0])
        if len(new):
            self.index = self.index.append(pd.Index(new.astype(np.uint64)))
            codes = self.lookup(hashes)
        return codes


def _take(values: np.ndarray, codes: np.ndarray, missing: float | int) -> np.ndarray:
    """``values[codes]``, with ``missing`` where the code is -1."""
    out = np.full(len(codes), missing, dtype=values.dtype)
    known = codes >= 0
    out[known] = values[codes[known]]
    return out


def _searchsorted(ordered: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.searchsorted(ordered, queries)`` (left), querying in sorted order: cache friendly."""
    order = np.argsort(queries, kind="stable")
    positions = np.empty(len(queries), dtype=np.int64)
    positions[order] = np.searchsorted(ordered, queries[order])
    return positions


def _comb(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Sort keys ordering events by key, then day."""
    return (codes << _DAY_BITS) | days


@dataclass
class _Sorted:
    """Events sorted by (key, day) with cumulative weights, for "before day d" sums."""

    comb: np.ndarray
    days: np.ndarray
    cumulative: np.ndarray  # (events + 1, weights) with a leading row of zeros

    @classmethod
    def build(cls, codes: np.ndarray, days: np.ndarray, weights: np.ndarray) -> _Sorted:
        comb = _comb(codes, days)
        order = np.argsort(comb, kind="stable")
        cumulative = np.zeros((len(comb) + 1, weights.shape[1]))
        np.cumsum(weights[order], axis=0, out=cumulative[1:])
        return cls(comb[order], days[order], cumulative)

    def before(self, codes: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query: summed weights of the key's events before ``days``, and their first day."""
        known = codes >= 0
        safe = np.where(known, codes, 0)
        start = _searchsorted(self.comb, safe << _DAY_BITS)
        stop = _searchsorted(self.comb, _comb(safe, days))
        stop = np.where(known, stop, start)
        sums = self.cumulative[stop] - self.cumulative[start]
        first = np.full(len(codes), NO_DAY)
        some = stop > start
        first[some] = self.days[start[some]]
        return sums, first


@dataclass
class KeyedCounts:
    """Per key: event weight on closed days (before the last day seen), on the last (open)
    day, and the first event day."""

    keys: KeyIndex = field(default_factory=KeyIndex)
    closed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def known(self, hashes: np.ndarray) -> np.ndarray:
        """Whether each key already has an event in the history."""
        return _take(self.first, self.keys.lookup(hashes), NO_DAY) != NO_DAY

    def step(self, query: np.ndarray, query_days: np.ndarray, events: np.ndarray,
             event_days: np.ndarray, weights: np.ndarray, last_day: int,
             new_last_day: int) -> tuple[np.ndarray, np.ndarray]:
        """Weight and first day of each query key's events strictly before its day, counting
        the history and this batch's events; then append the events.

        ``last_day`` is the last day seen before this batch (-1 for none), ``new_last_day``
        the last day after it; days are sorted ascending.
        """
        event_codes = self.keys.add(events)
        self._grow(len(self.keys))
        codes = self.keys.lookup(query)
        total = _take(self.closed, codes, 0.0)
        total += np.where(query_days > last_day, _take(self.open, codes, 0.0), 0.0)
        first = _take(self.first, codes, NO_DAY)
        first = np.where(first < query_days, first, NO_DAY)
        batch = _Sorted.build(event_codes, event_days, weights[:, None])
        within, batch_first = batch.before(codes, query_days)
        total += within[:, 0]
        first = np.minimum(first, batch_first)
        self._append(event_codes, event_days, weights, last_day, new_last_day)
        return total, first

    def _append(self, codes: np.ndarray, days: np.ndarray, weights: np.ndarray, last_day: int,
                new_last_day: int) -> None:
        n = len(self.keys)
        if new_last_day > last_day:
            self.closed += self.open
            self.open[:] = 0.0
        today = days == new_last_day
        self.closed += np.bincount(codes[~today], weights=weights[~today], minlength=n)
        self.open += np.bincount(codes[today], weights=weights[today], minlength=n)
        unique, first_at = np.unique(codes, return_index=True)  # days ascending: first = min
        self.first[unique] = np.minimum(self.first[unique], days[first_at])

    def _grow(self, n: int) -> None:
        extra = n - len(self.closed)
        if extra > 0:
            self.closed = np.concatenate([self.closed, np.zeros(extra)])
            self.open = np.concatenate([self.open, np.zeros(extra)])
            self.first = np.concatenate([self.first, np.full(extra, NO_DAY)])


@dataclass
class Findings:
    """Per key: inspected declarations and fraud findings, each from the day it became known."""

    keys: KeyIndex = field(default_factory=KeyIndex)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    known_days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fraud: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _table: _Sorted | None = None

    def add(self, hashes: np.ndarray, known_days: np.ndarray, fraud: np.ndarray) -> None:
        """Record inspection outcomes (1: fraud found, 0: clean) known from ``known_days``."""
        self.codes = np.concatenate([self.codes, self.keys.add(hashes)])
        self.known_days = np.concatenate([self.known_days, known_days.astype(np.int64)])
        self.fraud = np.concatenate([self.fraud, fraud.astype(np.float64)])
        weights = np.column_stack([np.ones(len(self.fraud)), self.fraud])
        self._table = _Sorted.build(self.codes, self.known_days, weights)

    def before(self, hashes: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inspected declarations and fraud findings of each key known before its day."""
        if self._table is None:
            zeros = np.zeros(len(hashes))
            return zeros, zeros.copy()
        sums, _ = self._table.before(self.keys.lookup(hashes), days)
        return sums[:, 0], sums[:, 1]


@dataclass
class TradeHistory:
    """The state of the trade features: counts per key family and findings per key family."""

    counts: dict[str, KeyedCounts] = field(default_factory=dict)
    findings: dict[str, Findings] = field(default_factory=dict)
    first_day: int = -1  # first day ever transformed, -1 before any
    last_day: int = -1  # last day transformed, -1 before any

    def family(self, name: str) -> KeyedCounts:
        """The counts of a key family, created on first use."""
        return self.counts.setdefault(name, KeyedCounts())

    def finding_family(self, name: str) -> Findings:
        """The findings of a key family (empty when no labels were recorded)."""
        return self.findings.setdefault(name, Findings())
