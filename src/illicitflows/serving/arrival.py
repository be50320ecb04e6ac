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

Feature times are the running maximum of the event times in arrival order, so they can be
recomputed from the history alone: :func:`feature_times`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LATENESS = pd.Timedelta(minutes=10)
DEFAULT_CLOCK_SKEW = pd.Timedelta(minutes=5)


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

    @classmethod
    def from_env(cls) -> Arrival:
        """``ILLICITFLOWS_ALLOWED_LATENESS_S`` and ``ILLICITFLOWS_CLOCK_SKEW_S`` (seconds;
        ``off`` disables the clock-skew check, for historical back-fills)."""
        lateness = os.environ.get("ILLICITFLOWS_ALLOWED_LATENESS_S")
        skew = os.environ.get("ILLICITFLOWS_CLOCK_SKEW_S")
        return cls(
            allowed_lateness=(DEFAULT_LATENESS if not lateness
                              else pd.Timedelta(seconds=float(lateness))),
            clock_skew=(DEFAULT_CLOCK_SKEW if not skew else None if skew.lower() == "off"
                        else pd.Timedelta(seconds=float(skew))))

    def issues(self, times: pd.Series, clock: pd.Timestamp | None,
               field_name: str) -> list[dict[str, Any]]:
        """The records of one request (``times`` indexed by record index) that are too late
        for ``clock`` or too far in the future: index, field, reason naming the limit."""
        found: list[dict[str, Any]] = []
        values = times.to_numpy(dtype="datetime64[ns]")
        if self.clock_skew is not None:
            limit = self.now() + self.clock_skew
            for index in times.index[values > np.datetime64(limit)].tolist():
                found.append({"index": int(index), "field": field_name,
                              "reason": f"in the future: more than {_text(self.clock_skew)} "
                                        f"after the server's clock ({limit.isoformat()})",
                              "value": str(times[index])})
        if clock is not None:
            oldest = clock - self.allowed_lateness
            for index in times.index[values < np.datetime64(oldest)].tolist():
                found.append({"index": int(index), "field": field_name,
                              "reason": f"too late: more than the allowed lateness of "
                                        f"{_text(self.allowed_lateness)} behind the newest "
                                        f"record taken ({clock.isoformat()})",
                              "value": str(times[index])})
        return sorted(found, key=lambda issue: issue["index"])


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
