"""When records may arrive: out of order within an allowed lateness, not from the future.

Feeds of many channels or banks never deliver in strict time order, while the causal features
read a history kept in time order. The rules, the same for live scoring, a restart's rebuild
and an auditor's replay (all read the history in arrival order, which it keeps):

- The history has a **clock**: the newest event time it has taken. A request's records are
  taken in their time order (ties in the order sent).
- A record up to ``allowed_lateness`` behind the clock is accepted. Its **feature time** is the
  clock: it is scored against the state as it is when it arrives, and enters the windows at the
  clock, never before records already taken. It therefore sees every record that arrived
  before it, later-stamped ones included, and none that arrives after it, earlier-stamped ones
  included; its windows end at the clock (the time-of-day and weekday features read the clock
  too, at most the lateness away). Its true timestamp is kept in the record, the audit log and
  the history. A record at or after the clock is scored at its own time and moves the clock.
- A record further behind the clock than the lateness is refused (422 naming the record, the
  field and the limit): its features would be built from a state that moved on.
- A record stamped more than ``clock_skew`` after the server's clock is refused (422), instead
  of moving the history's clock to the future and making every real record late. For
  historical back-fills an administrator turns this check off (``clock_skew`` None).
- A record whose id the detector has already decided is not subject to these rules: it is
  answered with its original decision whatever its age (:mod:`~illicitflows.serving.engine`
  looks its id up first).

**Day-stamped records.** Declarations carry dates, not times, and some payment feeds stamp whole
days: a rule in seconds would make every record of yesterday late and could find a date in a
time zone ahead of UTC "in the future". A detector whose records have a resolution of a day
(trade always; transactions when the training data was measured day-stamped,
:mod:`illicitflows.transactions.features.scales`) compares whole days instead
(:meth:`Arrival.for_resolution`): a record is too late when its date is more than
``allowed_lateness_days`` (3) before the clock's date, and in the future when its date is more
than ``clock_skew_days`` (1, so that every time zone's today passes) after the server's UTC
date. Such a late record is scored at the clock's date, as above.

Feature times are the running maximum of the event times in arrival order, so they can be
recomputed from the history alone: :func:`feature_times`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LATENESS = pd.Timedelta(minutes=10)
DEFAULT_CLOCK_SKEW = pd.Timedelta(minutes=5)
DEFAULT_LATENESS_DAYS = 3
DEFAULT_CLOCK_SKEW_DAYS = 1
DAY = pd.Timedelta(days=1)


def _utc_now() -> pd.Timestamp:
    """The server's clock, naive UTC as record timestamps are."""
    return pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))


@dataclass(frozen=True)
class Arrival:
    """The arrival rules of a scorer (see the module's documentation)."""

    allowed_lateness: pd.Timedelta = DEFAULT_LATENESS
    #: How far past the server's clock a record may be stamped; None: no limit (back-fills).
    clock_skew: pd.Timedelta | None = DEFAULT_CLOCK_SKEW
    now: Callable[[], pd.Timestamp] = field(default=_utc_now, compare=False)
    #: The same two rules in whole days, for day-stamped records (:meth:`for_resolution`).
    allowed_lateness_days: int = DEFAULT_LATENESS_DAYS
    clock_skew_days: int | None = DEFAULT_CLOCK_SKEW_DAYS
    #: Compare whole days (the day rules) instead of times.
    in_days: bool = False

    @classmethod
    def from_env(cls) -> Arrival:
        """``ILLICITFLOWS_ALLOWED_LATENESS_S`` and ``ILLICITFLOWS_CLOCK_SKEW_S`` (seconds), and
        ``ILLICITFLOWS_ALLOWED_LATENESS_DAYS`` and ``ILLICITFLOWS_CLOCK_SKEW_DAYS`` (whole days,
        for day-stamped records); ``off`` disables a clock-skew check, for historical
        back-fills."""
        lateness = os.environ.get("ILLICITFLOWS_ALLOWED_LATENESS_S")
        skew = os.environ.get("ILLICITFLOWS_CLOCK_SKEW_S")
        skew_days = _setting("ILLICITFLOWS_CLOCK_SKEW_DAYS", DEFAULT_CLOCK_SKEW_DAYS, off=True)
        return cls(
            allowed_lateness=(DEFAULT_LATENESS if not lateness
                              else pd.Timedelta(seconds=float(lateness))),
            clock_skew=(DEFAULT_CLOCK_SKEW if not skew else None if skew.lower() == "off"
                        else pd.Timedelta(seconds=float(skew))),
            allowed_lateness_days=int(_setting("ILLICITFLOWS_ALLOWED_LATENESS_DAYS",
                                               DEFAULT_LATENESS_DAYS)),
            clock_skew_days=None if skew_days is None else int(skew_days))

    def for_resolution(self, resolution_s: float) -> Arrival:
        """The rules for records stamped at this resolution: whole days from a day on."""
        return replace(self, in_days=resolution_s >= DAY.total_seconds())

    def late(self, times: pd.Series, clock: pd.Timestamp | None) -> np.ndarray:
        """Which records (of one request) are further behind ``clock`` than the lateness."""
        values = times.to_numpy(dtype="datetime64[ns]")
        if clock is None:
            return np.zeros(len(values), dtype=bool)
        if self.in_days:
            days = values.astype("datetime64[D]")
            return days < np.datetime64(clock.floor("D").as_unit("ns"), "D") - np.timedelta64(
                self.allowed_lateness_days, "D")
        return values < np.datetime64((clock - self.allowed_lateness).as_unit("ns"))

    def issues(self, times: pd.Series, clock: pd.Timestamp | None,
               field_name: str) -> list[dict[str, Any]]:
        """The records of one request (``times`` indexed by record index) that are too late
        for ``clock`` or too far in the future: index, field, reason naming the limit."""
        found: list[dict[str, Any]] = []
        values = times.to_numpy(dtype="datetime64[ns]")
        future = self._future(values)
        if future is not None:
            ahead, reason = future
            for index in times.index[ahead].tolist():
                found.append({"index": int(index), "field": field_name, "reason": reason,
                              "value": str(times[index])})
        if clock is not None:
            limit = (_days(self.allowed_lateness_days) if self.in_days
                     else _text(self.allowed_lateness))
            newest = (f"date taken ({clock.date().isoformat()})" if self.in_days
                      else f"record taken ({clock.isoformat()})")
            for index in times.index[self.late(times, clock)].tolist():
                found.append({"index": int(index), "field": field_name,
                              "reason": f"too late: more than the allowed lateness of {limit} "
                                        f"behind the newest {newest}",
                              "value": str(times[index])})
        return sorted(found, key=lambda issue: issue["index"])

    def _future(self, values: np.ndarray) -> tuple[np.ndarray, str] | None:
        """The records stamped too far past the server's clock, and the reason; None when the
        check is off."""
        if self.in_days:
            if self.clock_skew_days is None:
                return None
            today = np.datetime64(self.now().floor("D").as_unit("ns"), "D")
            limit_day = today + np.timedelta64(self.clock_skew_days, "D")
            return (values.astype("datetime64[D]") > limit_day,
                    f"in the future: more than {_days(self.clock_skew_days)} after the "
                    f"server's date ({today})")
        if self.clock_skew is None:
            return None
        limit = self.now() + self.clock_skew
        return (values > np.datetime64(limit.as_unit("ns")),
                f"in the future: more than {_text(self.clock_skew)} after the server's clock "
                f"({limit.isoformat()})")


def time_order(times: pd.Series) -> np.ndarray:
    """Positions of a request's records in time order (ties in the order sent)."""
    return np.argsort(times.to_numpy(dtype="datetime64[ns]"), kind="stable")


def feature_times(times: pd.Series, clock: pd.Timestamp | None) -> pd.Series:
    """The feature time of each record taken in this order after ``clock``: the running
    maximum of the event times (and the clock)."""
    values = times.to_numpy(dtype="datetime64[ns]")
    if clock is not None and len(values):
        values = np.maximum(values, np.datetime64(clock.as_unit("ns")))
    return pd.Series(np.maximum.accumulate(values) if len(values) else values,
                     index=times.index, name=times.name)


def _text(delta: pd.Timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:g} s"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _setting(name: str, default: int, off: bool = False) -> float | None:
    """A whole, non-negative number of days from environment variable ``name`` (``off``:
    None, where allowed), else a ValueError naming it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if off and text.lower() == "off":
        return None
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number of days"
                         f"{' or off' if off else ''}, got {text!r}")
    return int(text)
