"""Shared training steps: negative sampling keeps every positive and undoes itself by weight;
the risk memory's time folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.jobs.risk_memory import _time_folds
from illicitflows.jobs.training import sample_negatives


def test_negative_sampling_keeps_positives_and_reweights_negatives() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(20_000) < 0.01).astype(np.int8)
    train = np.arange(len(y)) < 15_000
    keep, weight = sample_negatives(train, y, 0.2, seed=0, sample_weight=None)
    assert not keep[~train].any()
    assert keep[train & (y == 1)].all()
    kept_negatives = (keep & (y == 0)).sum() / (train & (y == 0)).sum()
    assert 0.18 < kept_negatives < 0.22
    assert np.allclose(weight[y == 0], 5.0) and np.allclose(weight[y == 1], 1.0)
    expected = (train & (y == 0)).sum()
    assert abs(weight[keep & (y == 0)].sum() - expected) / expected < 0.1


def test_risk_memory_folds_are_consecutive_in_time_and_cover_the_training_rows() -> None:
    stamps = pd.Timestamp("2022-09-01") + pd.to_timedelta(np.arange(10)[::-1], unit="h")
    frame = pd.DataFrame({"timestamp": stamps})  # input order is the reverse of time order
    splits = np.array(["train"] * 6 + ["valid"] * 2 + ["test"] * 2, dtype=object)
    folds = _time_folds(frame, splits, 3)
    assert [sorted(fold) for fold in folds] == [[4, 5], [2, 3], [0, 1]]  # earliest first
