"""Mirror statistics: what partner countries report as exports to us, per HS6, origin, month.

A declaration is compared with the latest month before its own for which the partner reported
its HS6 and origin: mirror statistics are published after the month ends.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.trade.features.history import EPOCH, KeyIndex, key_hash

MIRROR_CELL = ["hs6", "origin_country"]
_MONTH_BITS = 16


def month_number(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Months since January 1900 (0-based)."""
    months = np.asarray(dates).astype("datetime64[M]").astype(np.int64)  # since 1970-01
    return months + 70 * 12


def month_start_day(months: np.ndarray) -> np.ndarray:
    """Days since 1900-01-01 of the first day of each month number."""
    first = (months - 70 * 12).astype("datetime64[M]").astype("datetime64[D]")
    return (first - EPOCH).astype(np.int64)


class MirrorTable:
    """Partner-reported FOB value and net mass per (HS6, origin) cell and month."""

    def __init__(self, frame: pd.DataFrame) -> None:
        cells = key_hash(frame[MIRROR_CELL].astype(str))
        months = month_number(frame["month"])
        mass = frame["net_mass_kg"] if "net_mass_kg" in frame.columns else np.nan
        totals = pd.DataFrame({"cell": cells, "month": months, "fob": frame["fob_value"],
                               "mass": mass}).groupby(["cell", "month"], sort=False).sum(
                                   min_count=1).reset_index()
        self.keys = KeyIndex()
        comb = (self.keys.add(totals["cell"].to_numpy(dtype=np.uint64)) << _MONTH_BITS) | \
            totals["month"].to_numpy(dtype=np.int64)
        order = np.argsort(comb, kind="stable")
        self.comb = comb[order]
        self.month = totals["month"].to_numpy(dtype=np.int64)[order]
        self.fob = totals["fob"].to_numpy(dtype=np.float64)[order]
        self.mass = totals["mass"].to_numpy(dtype=np.float64)[order]

    def previous(self, cells: np.ndarray,
                 months: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: latest reported month before ``months`` (-1: none), its FOB and mass."""
        codes = self.keys.lookup(cells)
        at = np.searchsorted(self.comb, (np.maximum(codes, 0) << _MONTH_BITS) | months) - 1
        found = (codes >= 0) & (at >= 0)
        found[found] = (self.comb[at[found]] >> _MONTH_BITS) == codes[found]
        safe = np.maximum(at, 0)
        return (np.where(found, self.month[safe], -1), np.where(found, self.fob[safe], np.nan),
                np.where(found, self.mass[safe], np.nan))
