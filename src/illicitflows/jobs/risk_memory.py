"""Training the staged transactions model: models whose scores feed every account's risk
memory, round after round, then the final model on the base features plus every round's memory.

The memory of training rows must not come from a model that saw those rows' labels, or the
final model would learn to trust an over-confident memory. So the training period is cut into
``memory_folds`` time folds; each fold remembers the scores of a model trained on the other
folds (out of fold). Validation and test rows remember what the detector itself computes: the
scores of the model trained on the whole training period, which the detector keeps, attached to
its feature builder, and the service runs. Round r's models read the base features and the
memory of the rounds before it.

All fits of a round share one binned LightGBM training Dataset (the folds are subsets of it).
Only the full model stops early on the validation Dataset; the fold models then train for the
full model's best number of rounds, without validation (as in cross-validation with a fixed
round count): that costs no validation scoring and no patience rounds past the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from illicitflows.jobs.config import TransactionsPipeline
from illicitflows.jobs.training import lightgbm_params, score_rows, training_rows
from illicitflows.modeling.lgbm import (
    LightGBMModel,
    fit_booster,
    fit_rounds,
    train_and_valid_sets,
)
from illicitflows.modeling.threshold import choose_threshold
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.features.builder import time_order


@dataclass
class FirstStageData:
    """The first stage's training rows (negatives sampled) and validation rows, binned once."""

    rows: np.ndarray
    y: np.ndarray
    train: lgb.Dataset
    valid: lgb.Dataset
    pipeline: TransactionsPipeline

    @classmethod
    def build(cls, features: pd.DataFrame, y: np.ndarray, splits: np.ndarray,
              categorical: list[str], pipeline: TransactionsPipeline) -> FirstStageData:
        """Bin the (sampled) training rows and, on their bins, the validation rows."""
        train, weight = training_rows(splits == "train", y, pipeline.model, pipeline.seed)
        rows, valid = np.flatnonzero(train), np.flatnonzero(splits == "valid")
        params = lightgbm_params(pipeline.model, y[rows], pipeline.seed)
        train_set, valid_set = train_and_valid_sets(features, y, rows, valid, params,
                                                    categorical, weight)
        return cls(rows, y, train_set, valid_set, pipeline)

    def fit_full(self) -> LightGBMModel:
        """The first stage on every training row, stopped early on the validation rows."""
        model = self.pipeline.model
        params = lightgbm_params(model, self.y[self.rows], self.pipeline.seed)
        return fit_booster(params, self.train, self.valid, model.num_boost_round,
                           model.early_stopping_rounds)

    def fit_folds(self, folds: list[np.ndarray], rounds: int) -> list[LightGBMModel]:
        """For each fold, a first-stage model on the other folds' training rows, trained for
        ``rounds`` rounds."""
        return [self._fit_without(fold, rounds) for fold in folds]

    def _fit_without(self, fold: np.ndarray, rounds: int) -> LightGBMModel:
        in_fold = np.zeros(len(self.y), dtype=bool)  # a mask: set operations sort millions
        in_fold[fold] = True
        kept = np.flatnonzero(~in_fold[self.rows])
        params = lightgbm_params(self.pipeline.model, self.y[self.rows[kept]],
                                 self.pipeline.seed)
        return fit_rounds(params, self.train.subset(kept), rounds)


def add_risk_memory(builder: TransactionFeatureBuilder, frame: pd.DataFrame,
                    features: pd.DataFrame, y: np.ndarray, splits: np.ndarray,
                    pipeline: TransactionsPipeline) -> pd.DataFrame:
    """Fit every memory round on ``features`` (the base features, then the earlier rounds'
    memory), attach each round's model to ``builder`` and add its memory columns to
    ``features`` in place (no copy of the large base matrix)."""
    folds = _time_folds(frame, splits, pipeline.memory_folds)
    transfers = time_order(frame)
    train = splits == "train"
    valid = splits == "valid"
    rounds = pipeline.features.memory_rounds
    served_memory: dict[str, np.ndarray] = {}  # earlier rounds as the detector computes them
    for stage in range(rounds):
        data = FirstStageData.build(features, y, splits, builder.categorical_features, pipeline)
        full = data.fit_full()
        held_out = np.empty(len(frame))
        for fold, fold_model in zip(folds, data.fit_folds(folds, full.best_rounds),
                                    strict=True):
            held_out[fold] = score_rows(fold_model, features, fold)
        del data  # the binned Datasets
        served = score_rows(full, features.assign(**served_memory), np.arange(len(frame)))
        threshold = choose_threshold(y[valid], served[valid], pipeline.threshold.policy,
                                     pipeline.threshold.budget)
        builder.attach_memory(full, threshold)
        last = stage == rounds - 1
        if last:
            served_memory.clear()  # no later round scores with it
        as_served = builder.memory_features(transfers, served, stage)
        for name in as_served.columns:
            features[name] = as_served[name].to_numpy()
            if not last:
                served_memory[name] = features[name].to_numpy()
        del as_served
        remembered = builder.memory_features(transfers, np.where(train, held_out, served),
                                             stage)
        for name in remembered.columns:  # training rows remember out-of-fold scores
            features[name] = np.where(train, remembered[name].to_numpy(),
                                      features[name].to_numpy())
    return features


def _time_folds(frame: pd.DataFrame, splits: np.ndarray, k: int) -> list[np.ndarray]:
    """The training rows cut into ``k`` consecutive folds of (almost) equal size by time."""
    rows = np.flatnonzero(splits == "train")
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]")[rows]
    return np.array_split(rows[np.argsort(stamps, kind="stable")], k)
