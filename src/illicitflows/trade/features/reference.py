"""Reference statistics learned from training declarations: price bands per HS cell, shares
of one value within another (tax type given origin...), category vocabularies.

Every table is fitted once, on training rows, and only read afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from illicitflows.trade.features.history import KeyIndex

#: Quantiles kept per reference cell (every 5 %): percentiles interpolate between them.
GRID = np.linspace(0.0, 1.0, 21)
_MEDIAN, _Q1, _Q3 = 10, 5, 15
_MIN_SCALE = 0.01  # floor of MAD and IQR (log units) for cells of near-constant prices
_MAD_TO_SIGMA = 1.4826
OTHER = "(other)"
NONE = "(none)"


def group_quantiles(codes: np.ndarray, values: np.ndarray,
                    quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group code 0..k-1: the count and the quantiles (linear interpolation) of values."""
    k = int(codes.max()) + 1 if len(codes) else 0
    counts = np.bincount(codes, minlength=k)
    if not len(values):
        return counts, np.full((k, len(quantiles)), np.nan)
    ordered = values[np.lexsort((values, codes))]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = starts + np.maximum(counts - 1, 0)
    position = starts[:, None] + quantiles[None, :] * (last - starts)[:, None]
    low = np.minimum(np.floor(position).astype(np.int64), len(ordered) - 1)
    high = np.minimum(low + 1, last[:, None])
    fraction = position - low
    grid = ordered[low] * (1 - fraction) + ordered[high] * fraction
    grid[counts == 0] = np.nan
    return counts, grid


@dataclass
class Band:
    """Per row: the reference distribution chosen for it (NaN where none qualifies)."""

    grid: np.ndarray  # (rows, len(GRID)) quantiles
    mad: np.ndarray
    level: np.ndarray  # index of the chosen level (0 = finest), -1 for none

    @property
    def median(self) -> np.ndarray:
        return self.grid[:, _MEDIAN]

    def robust_z(self, values: np.ndarray) -> np.ndarray:
        """(value - median) / (1.4826 MAD)."""
        scale = _MAD_TO_SIGMA * np.maximum(self.mad, _MIN_SCALE)
        return (values - self.median) / scale

    def iqr_position(self, values: np.ndarray) -> np.ndarray:
        """Distance below Q1 (negative) or above Q3 (positive) in IQRs; 0 inside the band."""
        q1, q3 = self.grid[:, _Q1], self.grid[:, _Q3]
        iqr = np.maximum(q3 - q1, _MIN_SCALE)
        below, above = np.minimum(values - q1, 0.0), np.maximum(values - q3, 0.0)
        return np.where(np.isnan(values) | np.isnan(q1), np.nan, (below + above) / iqr)

    def percentile(self, values: np.ndarray) -> np.ndarray:
        """Position of the value in the reference distribution, 0-100 (interpolated)."""
        grid = self.grid
        above = (grid <= values[:, None]).sum(axis=1)
        low = np.clip(above - 1, 0, len(GRID) - 2)
        lo, hi = grid[np.arange(len(values)), low], grid[np.arange(len(values)), low + 1]
        fraction = np.clip((values - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
        result = 100.0 * (GRID[low] + fraction * (GRID[low + 1] - GRID[low]))
        result = np.where(above == 0, 0.0, np.where(above == len(GRID), 100.0, result))
        return np.where(np.isnan(values) | np.isnan(grid[:, 0]), np.nan, result)


class BandReference:
    """Distributions of a value per cell at several levels, finest first (e.g. HS6 x origin,
    HS6, HS4, HS2); a row uses the finest level whose cell has ``min_count`` training rows."""

    def __init__(self, min_count: int) -> None:
        self.min_count = min_count

    def fit(self, levels: list[np.ndarray], values: np.ndarray) -> BandReference:
        """``levels``: per level, the cell key hash of every training row."""
        present = ~np.isnan(values)
        self.keys_: list[KeyIndex] = []
        self.grids_: list[np.ndarray] = []
        self.mads_: list[np.ndarray] = []
        for hashes in levels:
            index = KeyIndex()
            codes = index.add(hashes[present])
            counts, grid = group_quantiles(codes, values[present], GRID)
            qualifies = counts >= self.min_count
            deviation = np.abs(values[present] - grid[codes, _MEDIAN])
            _, mad = group_quantiles(codes, deviation, np.array([0.5]))
            grid[~qualifies] = np.nan
            self.keys_.append(index)
            self.grids_.append(grid)
            self.mads_.append(mad[:, 0])
        return self

    def band(self, levels: list[np.ndarray]) -> Band:
        """The chosen reference of each row (keys per level as in :meth:`fit`)."""
        n = len(levels[0])
        grid = np.full((n, len(GRID)), np.nan)
        mad = np.full(n, np.nan)
        level = np.full(n, -1)
        for depth, hashes in enumerate(levels):
            codes = self.keys_[depth].lookup(hashes)
            todo = (level < 0) & (codes >= 0)
            todo[todo] = ~np.isnan(self.grids_[depth][codes[todo], 0])
            grid[todo] = self.grids_[depth][codes[todo]]
            mad[todo] = self.mads_[depth][codes[todo]]
            level[todo] = depth
        return Band(grid, mad, level)


class CountTable:
    """How many training rows had each key."""

    def fit(self, hashes: np.ndarray) -> CountTable:
        self.keys_ = KeyIndex()
        self.counts_ = np.bincount(self.keys_.add(hashes)).astype(np.float64)
        return self

    def count(self, hashes: np.ndarray) -> np.ndarray:
        codes = self.keys_.lookup(hashes)
        counts = np.zeros(len(codes))
        counts[codes >= 0] = self.counts_[codes[codes >= 0]]
        return counts


def share(part: CountTable, whole: CountTable, part_keys: np.ndarray,
          whole_keys: np.ndarray) -> np.ndarray:
    """count(part) / count(whole) in training; NaN where the whole was never seen."""
    total = whole.count(whole_keys)
    return np.where(total > 0, part.count(part_keys) / np.where(total > 0, total, 1.0), np.nan)


class Vocabulary:
    """The frequent categories of a text column; the rest share ``(other)``."""

    def __init__(self, min_count: int, max_categories: int) -> None:
        self.min_count = min_count
        self.max_categories = max_categories

    def fit(self, values: pd.Series) -> Vocabulary:
        counts = values.value_counts(sort=False)
        counts = counts[counts >= self.min_count]
        ordered = sorted(counts.index, key=lambda v: (-counts[v], v))
        self.values_ = tuple(ordered[:self.max_categories - 1])
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        """Category labels in code order (``(none)`` for an empty value, then ``(other)``)."""
        return tuple(v if v else NONE for v in self.values_) + (OTHER,)

    def codes(self, values: pd.Series) -> np.ndarray:
        codes = pd.Index(self.values_, dtype=object).get_indexer(values.astype(object))
        return np.where(codes >= 0, codes, len(self.values_)).astype(np.float64)
