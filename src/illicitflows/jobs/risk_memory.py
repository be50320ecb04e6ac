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
from illicitflows.jobs.training import lightgbm_params, training_rows
from illicitflows.modeling.lgbm import (
    DTYPE,
    SCORE_CHUNK,
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

    def fit_rounds(self, fit_rows: np.ndarray, rounds: int) -> LightGBMModel:
        """A first-stage model on the training rows among ``fit_rows`` (frame positions),
        trained for ``rounds`` rounds."""
        kept = np.flatnonzero(np.isin(self.rows, fit_rows))
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
    train_rows, valid = np.flatnonzero(train), splits == "valid"
    served_memory: dict[str, np.ndarray] = {}  # earlier rounds as the detector computes them
    for stage in range(pipeline.features.memory_rounds):
        data = FirstStageData.build(features, y, splits, builder.categorical_features, pipeline)
        full = data.fit_full()
        held_out = np.empty(len(frame))
        for fold in folds:
            fold_model = data.fit_rounds(np.setdiff1d(train_rows, fold), full.best_rounds)
            held_out[fold] = score_rows(fold_model, features, fold)
        del data  # the binned Datasets
        served = score_rows(full, features.assign(**served_memory), np.arange(len(frame)))
        threshold = choose_threshold(y[valid], served[valid], pipeline.threshold.policy,
                                     pipeline.threshold.budget)
        builder.attach_memory(full, threshold)
        remembered = builder.memory_features(transfers, np.where(train, held_out, served),
                                             stage)
        as_served = builder.memory_features(transfers, served, stage)
        for name in remembered.columns:
            served_memory[name] = as_served[name].to_numpy(dtype=DTYPE)
            features[name] = np.where(train, remembered[name].to_numpy(dtype=DTYPE),
                                      served_memory[name])
    return features


def score_rows(model: LightGBMModel, features: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Scores of the given rows of ``features``, a chunk at a time (no copy of all of them)."""
    parts = [np.empty(0)]
    for start in range(0, len(rows), SCORE_CHUNK):
        parts.append(model.score(features.iloc[rows[start:start + SCORE_CHUNK]]))
    return np.concatenate(parts)


def _time_folds(frame: pd.DataFrame, splits: np.ndarray, k: int) -> list[np.ndarray]:
    """The training rows cut into ``k`` consecutive folds of (almost) equal size by time."""
    rows = np.flatnonzero(splits == "train")
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]")[rows]
    return np.array_split(rows[np.argsort(stamps, kind="stable")], k)
