"""Shared training steps: negative sampling keeps every positive and undoes itself by weight;
the first stage of the transactions model is scored out of fold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.jobs.risk_memory import _only_train, _time_halves
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


def test_first_stage_scores_each_training_half_with_a_model_of_the_other() -> None:
    stamps = pd.Timestamp("2022-09-01") + pd.to_timedelta(np.arange(10)[::-1], unit="h")
    frame = pd.DataFrame({"timestamp": stamps})  # input order is the reverse of time order
    splits = np.array(["train"] * 6 + ["valid"] * 2 + ["test"] * 2, dtype=object)
    (fit_early, score_late), (fit_late, score_early) = _time_halves(frame, splits)
    assert sorted(fit_early) == sorted(score_early) == [3, 4, 5]  # the three earliest
    assert sorted(fit_late) == sorted(score_late) == [0, 1, 2]
    only = _only_train(splits, fit_early)
    assert list(only) == ["unused"] * 3 + ["train"] * 3 + ["valid"] * 2 + ["test"] * 2
