"""Shared training steps: negative sampling keeps every positive and undoes itself by weight."""

from __future__ import annotations

import numpy as np

from illicitflows.jobs.training import _sample_negatives


def test_negative_sampling_keeps_positives_and_reweights_negatives() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(20_000) < 0.01).astype(np.int8)
    train = np.arange(len(y)) < 15_000
    keep, weight = _sample_negatives(train, y, 0.2, seed=0, sample_weight=None)
    assert not keep[~train].any()
    assert keep[train & (y == 1)].all()
    kept_negatives = (keep & (y == 0)).sum() / (train & (y == 0)).sum()
    assert 0.18 < kept_negatives < 0.22
    assert np.allclose(weight[y == 0], 5.0) and np.allclose(weight[y == 1], 1.0)
    expected = (train & (y == 0)).sum()
    assert abs(weight[keep & (y == 0)].sum() - expected) / expected < 0.1
