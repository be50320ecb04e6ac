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

**Horizon.** With a horizon of H days (``TradeFeatureConfig.history_horizon_days``) a key's
history is its current *activity spell*: the run of its events in which no two consecutive
ones are more than H days apart, ending no more than H days before the day asked about. A party
idle for longer than H days starts again from nothing when it returns (its count, first day and
the pairs it had are forgotten). Every answer depends on the last H days' events of a key and
on what the key's spell had summed up, so :meth:`TradeHistory.compact` drops the keys idle for
more than H days without changing any feature: memory follows the parties active within the
horizon, not the years the state has run. Without a horizon (models trained before it) a key's
spell never ends and nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NO_DAY = np.iinfo(np.int64).max
#: The horizon of a history without one: no spell ever ends.
LIFETIME = 1 << 40
#: A key's last event day before it has any.
NEVER = -(1 << 41)
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

    def keep(self, kept: np.ndarray) -> None:
        """Keep only the keys where ``kept`` is true (codes of the others are freed; those
        after them move down)."""
        self.index = self.index[kept]

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
class _Spells:
    """A batch's events sorted by (key, day), each with the start of its spell (the latest
    event at or before it more than ``horizon`` days after the key's previous event, or the
    key's first event in the batch) and whether that start continues the key's stored
    spell."""

    table: _Sorted
    codes: np.ndarray
    spell_start: np.ndarray
    breaks: np.ndarray

    @classmethod
    def build(cls, codes: np.ndarray, days: np.ndarray, weights: np.ndarray,
              stored_last: np.ndarray, horizon: int) -> _Spells:
        table = _Sorted.build(codes, days, weights[:, None])
        order = np.argsort(_comb(codes, days), kind="stable")
        codes, days = codes[order], table.days
        same = np.zeros(len(codes), dtype=bool)
        same[1:] = codes[1:] == codes[:-1]
        previous = np.where(same, np.roll(days, 1), stored_last[codes])
        breaks = (~same & (stored_last[codes] == NEVER)) | (days - previous > horizon)
        positions = np.arange(len(codes))
        spell_start = np.maximum.accumulate(np.where(breaks | ~same, positions, 0))
        return cls(table, codes, spell_start, breaks)

    def group_ends(self) -> np.ndarray:
        """Position of each key's last event."""
        ends = np.ones(len(self.codes), dtype=bool)
        ends[:-1] = self.codes[1:] != self.codes[:-1]
        return np.flatnonzero(ends)


@dataclass
class KeyedCounts:
    """Per key: event weight on closed days (before the last day seen), on the last (open)
    day, the first and the last event day, within the key's current spell (module
    documentation)."""

    keys: KeyIndex = field(default_factory=KeyIndex)
    closed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    open: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    horizon: int = LIFETIME

    def __setstate__(self, state: dict) -> None:
        """Counts pickled before the horizon (in a registered model): no spell ever ends."""
        state.setdefault("horizon", LIFETIME)
        state.setdefault("last", np.where(state["first"] == NO_DAY, NEVER, state["first"]))
        self.__dict__.update(state)

    def starts(self, hashes: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Whether each event (days ascending) starts a spell of its key: the key has no event
        before it within the horizon, stored or earlier in these."""
        codes = self.keys.lookup(hashes)
        stored_last = _take(self.last, codes, NEVER)
        order = np.argsort(hashes, kind="stable")
        ordered, ordered_days = hashes[order], days[order]
        same = np.zeros(len(hashes), dtype=bool)
        same[1:] = ordered[1:] == ordered[:-1]
        previous = np.where(same, np.roll(ordered_days, 1), stored_last[order])
        fresh = ~same & (stored_last[order] == NEVER)
        out = np.empty(len(hashes), dtype=bool)
        out[order] = fresh | (ordered_days - previous > self.horizon)
        return out

    def step(self, query: np.ndarray, query_days: np.ndarray, events: np.ndarray,
             event_days: np.ndarray, weights: np.ndarray, last_day: int,
             new_last_day: int) -> tuple[np.ndarray, np.ndarray]:
        """Weight and first day of each query key's events strictly before its day, within
        the key's spell, counting the history and this batch's events; then append the
        events.

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
        spells = _Spells.build(event_codes, event_days, weights, self.last, self.horizon)
        batch = self._merge_batch(spells, codes, query_days, total, first)
        idle = ~batch & (query_days - _take(self.last, codes, NEVER) > self.horizon)
        total[idle], first[idle] = 0.0, NO_DAY
        self._append(spells, last_day, new_last_day)
        return total, first

    def _merge_batch(self, spells: _Spells, codes: np.ndarray, query_days: np.ndarray,
                     total: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Fold the batch's events before each query's day into the stored ``total`` and
        ``first`` (in place): those of the spell of the key's latest such event, on top of the
        stored spell when that spell goes on into it, nothing when it ended more than the
        horizon ago. Returns which queries had such events."""
        table = spells.table
        safe = np.where(codes >= 0, codes, 0)
        start = _searchsorted(table.comb, safe << _DAY_BITS)
        stop = np.where(codes >= 0, _searchsorted(table.comb, _comb(safe, query_days)), start)
        batch = stop > start
        rows = np.flatnonzero(batch)
        if not len(rows):
            return batch
        latest = stop[rows] - 1
        spell = spells.spell_start[latest]
        goes_on = ~spells.breaks[spell]
        idle = query_days[rows] - table.days[latest] > self.horizon
        within = table.cumulative[stop[rows], 0] - table.cumulative[spell, 0]
        total[rows] = np.where(idle, 0.0, within + np.where(goes_on, total[rows], 0.0))
        began = np.where(goes_on, np.minimum(first[rows], table.days[spell]), table.days[spell])
        first[rows] = np.where(idle, NO_DAY, began)
        return batch

    def _append(self, spells: _Spells, last_day: int, new_last_day: int) -> None:
        """Add the batch: each key's last spell in it, on top of its stored spell when that
        goes on, in place of it otherwise."""
        if new_last_day > last_day:
            self.closed += self.open
            self.open[:] = 0.0
        if not len(spells.codes):
            return
        table, n = spells.table, len(self.keys)
        ends = spells.group_ends()
        keys, spell = spells.codes[ends], spells.spell_start[ends]
        again = keys[spells.breaks[spell]]
        self.closed[again], self.open[again], self.first[again] = 0.0, 0.0, NO_DAY
        group = np.cumsum(np.r_[True, spells.codes[1:] != spells.codes[:-1]]) - 1
        kept = np.arange(len(spells.codes)) >= spell[group]
        codes, days = spells.codes[kept], table.days[kept]
        weights = np.diff(table.cumulative[:, 0])[kept]
        today = days == new_last_day
        self.closed += np.bincount(codes[~today], weights=weights[~today], minlength=n)
        self.open += np.bincount(codes[today], weights=weights[today], minlength=n)
        unique, first_at = np.unique(codes, return_index=True)  # days ascending: first = min
        self.first[unique] = np.minimum(self.first[unique], days[first_at])
        self.last[keys] = table.days[ends]

    def compact(self, day: int) -> None:
        """Drop the keys idle for more than the horizon before ``day`` (no later question
        reads them: their spell has ended)."""
        kept = self.last >= day - self.horizon
        if kept.all():
            return
        self.keys.keep(kept)
        self.closed, self.open = self.closed[kept], self.open[kept]
        self.first, self.last = self.first[kept], self.last[kept]

    def _grow(self, n: int) -> None:
        extra = n - len(self.closed)
        if extra > 0:
            self.closed = np.concatenate([self.closed, np.zeros(extra)])
            self.open = np.concatenate([self.open, np.zeros(extra)])
            self.first = np.concatenate([self.first, np.full(extra, NO_DAY)])
            self.last = np.concatenate([self.last, np.full(extra, NEVER)])


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
    """The state of the trade features: counts per key family and findings per key family;
    with ``horizon_days``, counts within each key's spell, and keys idle beyond it dropped
    (:meth:`compact`; module documentation)."""

    counts: dict[str, KeyedCounts] = field(default_factory=dict)
    findings: dict[str, Findings] = field(default_factory=dict)
    first_day: int = -1  # first day ever transformed, -1 before any
    last_day: int = -1  # last day transformed, -1 before any
    horizon_days: int | None = None
    compacted_day: int = -1  # the day of the last compaction

    def __setstate__(self, state: dict) -> None:
        """A history pickled before the horizon (in a registered model): none."""
        state.setdefault("horizon_days", None)
        state.setdefault("compacted_day", -1)
        self.__dict__.update(state)

    @property
    def horizon(self) -> int:
        return LIFETIME if self.horizon_days is None else self.horizon_days

    def family(self, name: str) -> KeyedCounts:
        """The counts of a key family, created on first use."""
        return self.counts.setdefault(name, KeyedCounts(horizon=self.horizon))

    def finding_family(self, name: str) -> Findings:
        """The findings of a key family (empty when no labels were recorded)."""
        return self.findings.setdefault(name, Findings())

    def compact(self) -> None:
        """Drop the keys idle beyond the horizon, once a quarter of the horizon has passed
        since the last compaction (so memory stays within 1.25 horizons of activity)."""
        if self.horizon_days is None or self.last_day - self.compacted_day < max(
                1, self.horizon_days // 4):
            return
        for counts in self.counts.values():
            counts.compact(self.last_day)
        self.compacted_day = self.last_day

    def sizes(self) -> dict[str, int]:
        """Keys held per count family."""
        return {name: len(counts.keys) for name, counts in self.counts.items()}
