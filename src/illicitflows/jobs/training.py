"""Shared training steps: fit the configured learner on the train split, stop early and
choose the threshold on the validation split, score every record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.jobs.config import ModelConfig, ThresholdConfig
from illicitflows.modeling.detector import ScoringModel
from illicitflows.modeling.isolation import train_isolation_forest
from illicitflows.modeling.lgbm import (
    SCORE_CHUNK,
    LightGBMModel,
    averaged,
    positive_weight,
    train_lightgbm,
)
from illicitflows.modeling.threshold import choose_threshold


@dataclass
class FittedModel:
    """A trained model, its threshold and its scores on the validation and test records (NaN
    on the training records: nothing reads them, and at 5M transactions they cost 45 s)."""

    model: ScoringModel
    threshold: float
    scores: np.ndarray
    best_iterations: list[int] | None  # of each LightGBM model averaged


def fit_scoring_model(features: pd.DataFrame, y: np.ndarray | None, splits: np.ndarray,
                      model: ModelConfig, threshold: ThresholdConfig, categorical: list[str],
                      seed: int, sample_weight: np.ndarray | None = None) -> FittedModel:
    """Train on ``train``, validate on ``valid``; labels are optional for the isolation forest.
    A LightGBM ensemble's members differ by seed: in their sample of negatives and in
    LightGBM's bagging and feature sampling."""
    valid = splits == "valid"
    if model.kind == "isolation-forest":
        train, _ = training_rows(splits == "train", y, model, seed, sample_weight)
        fitted = train_isolation_forest(features[train], model.params, seed)
        best = None
    else:
        if y is None:
            raise ValueError("LightGBM needs labels; use model.kind: isolation-forest without")
        members = [_fit_lightgbm(features, y, splits, model, categorical, seed + member,
                                 sample_weight) for member in range(model.ensemble)]
        fitted = averaged(members)
        best = [member.booster.best_iteration for member in members]
    scores = np.full(len(features), np.nan)
    evaluated = np.flatnonzero(splits != "train")
    scores[evaluated] = score_rows(fitted, features, evaluated)
    valid_y = None if y is None else y[valid]
    chosen = choose_threshold(valid_y, scores[valid], threshold.policy, threshold.budget)
    return FittedModel(fitted, chosen, scores, best)


def _fit_lightgbm(features: pd.DataFrame, y: np.ndarray, splits: np.ndarray, model: ModelConfig,
                  categorical: list[str], seed: int,
                  sample_weight: np.ndarray | None) -> LightGBMModel:
    train, weight = training_rows(splits == "train", y, model, seed, sample_weight)
    return train_lightgbm(features, y, np.flatnonzero(train), np.flatnonzero(splits == "valid"),
                          lightgbm_params(model, y[train], seed), categorical,
                          model.num_boost_round, model.early_stopping_rounds, weight)


def score_rows(model: ScoringModel, features: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Scores of the given rows of ``features``, a chunk at a time (no copy of all of them)."""
    parts = [np.empty(0)]
    for start in range(0, len(rows), SCORE_CHUNK):
        parts.append(model.score(features.iloc[rows[start:start + SCORE_CHUNK]]))
    return np.concatenate(parts)


def lightgbm_params(model: ModelConfig, y_train: np.ndarray, seed: int) -> dict[str, Any]:
    """The configured LightGBM parameters with the seed, threads and positive weight."""
    return {"seed": seed, "num_threads": 2, **model.params,
            "scale_pos_weight": positive_weight(y_train, model.imbalance,
                                                model.max_positive_weight)}


def training_rows(train: np.ndarray, y: np.ndarray | None, model: ModelConfig, seed: int,
                  sample_weight: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows the learner fits on and their weights: for LightGBM with labels, every
    positive and a share of the negatives (see :func:`negative_share`, :func:`sample_negatives`)."""
    if model.kind == "lightgbm" and y is not None:
        share = negative_share(int((train & (y == 0)).sum()), model)
        if share < 1.0:
            return sample_negatives(train, y, share, seed, sample_weight)
    return train, sample_weight


def negative_share(negatives: int, model: ModelConfig) -> float:
    """The share of ``negatives`` training rows to keep: ``model.negative_sample``, lowered so
    that at most ``model.max_negatives`` rows are kept."""
    if model.max_negatives is None or negatives <= model.max_negatives:
        return model.negative_sample
    return min(model.negative_sample, model.max_negatives / negatives)


def sample_negatives(train: np.ndarray, y: np.ndarray, share: float, seed: int,
                     sample_weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Training rows with only ``share`` of the negatives, and weights that undo the sampling."""
    keep = train & ((y == 1) | (np.random.default_rng(seed).random(len(y)) < share))
    weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    return keep, np.where(y == 1, weight, weight / share)
