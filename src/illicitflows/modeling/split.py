"""Temporal splits by whole days: train on the past, choose on the next days, test on the last."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "test")


def split_by_fractions(timestamps: pd.Series,
                       fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> np.ndarray:
    """Label each record train / valid / test so that whole days go to one split and the
    shares of records are as close as possible to ``fractions`` (IBM's benchmark: 60/20/20)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be three positive shares summing to 1, "
                         f"got {list(fractions)}")
    days = timestamps.dt.floor("D").to_numpy()
    unique, counts = np.unique(days, return_counts=True)
    return split_by_dates(timestamps, *fraction_cut_dates(unique, counts, fractions))


def fraction_cut_dates(days: np.ndarray, counts: np.ndarray,
                       fractions: Sequence[float]) -> tuple[object, object]:
    """The first days of the valid and test splits, from the records per day (``days``
    sorted): :func:`split_by_fractions`'s cut, for data counted day by day elsewhere."""
    if len(days) < 3:
        raise ValueError(f"a temporal split needs at least 3 distinct days, got {len(days)}")
    share = np.cumsum(counts) / counts.sum()
    cut1 = _closest_cut(share, fractions[0], low=1, high=len(days) - 2)
    cut2 = _closest_cut(share, fractions[0] + fractions[1], low=cut1 + 1, high=len(days) - 1)
    return days[cut1], days[cut2]


def split_by_dates(timestamps: pd.Series, valid_from: object, test_from: object) -> np.ndarray:
    """train: before ``valid_from``; valid: up to ``test_from``; test: from ``test_from`` on."""
    valid_from, test_from = pd.Timestamp(valid_from), pd.Timestamp(test_from)
    if test_from <= valid_from:
        raise ValueError(f"split dates must increase: {valid_from.date()} then {test_from.date()}")
    stamps = timestamps.to_numpy()
    labels = np.full(len(stamps), "train", dtype=object)
    labels[stamps >= valid_from.to_datetime64()] = "valid"
    labels[stamps >= test_from.to_datetime64()] = "test"
    for name in SPLITS:
        if not (labels == name).any():
            raise ValueError(f"split dates {valid_from.date()}, {test_from.date()} leave the "
                             f"{name} split empty")
    return labels


def _closest_cut(share: np.ndarray, target: float, low: int, high: int) -> int:
    """Index of the first day of the next split: the day boundary whose share is nearest."""
    before = np.concatenate([[0.0], share[:-1]])  # share of records before each day
    candidates = np.arange(low, high + 1)
    return int(candidates[np.argmin(np.abs(before[candidates] - target))])
