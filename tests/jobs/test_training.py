"""Shared training steps: negative sampling keeps every positive and undoes itself by weight;
the risk memory's time folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.jobs.config import ModelConfig
from illicitflows.jobs.risk_memory import _time_folds
from illicitflows.jobs.training import negative_share, sample_negatives, training_rows


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


def test_max_negatives_lowers_the_kept_share_only_on_larger_data() -> None:
    model = ModelConfig(negative_sample=0.5, max_negatives=300)
    assert negative_share(400, model) == 0.5      # 200 kept: under the bound
    assert negative_share(3_000, model) == 0.1    # 1,500 would be kept: bounded to 300
    assert negative_share(3_000, ModelConfig(negative_sample=0.5)) == 0.5
    y = np.zeros(10_000, dtype=np.int8)
    y[::100] = 1
    train = np.ones(len(y), dtype=bool)
    keep, weight = training_rows(train, y, ModelConfig(max_negatives=1_000), seed=0)
    assert keep[y == 1].all() and 900 < (keep & (y == 0)).sum() < 1_100
    assert np.allclose(weight[y == 0], 9_900 / 1_000)
