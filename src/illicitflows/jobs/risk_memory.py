"""Training the two-stage transactions model: a first-stage model whose scores feed every
account's risk memory, then the final model on the base features plus that memory.

The memory features of training rows must not come from a model that saw those rows, or the
final model would learn to trust an over-confident memory. So the training period is cut in two
halves by time; each half is scored by a first-stage model trained on the other (out of fold).
Validation and test rows are scored by the first-stage model trained on the whole training
period, which is the one the detector keeps and the service runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from illicitflows.jobs.config import TransactionsPipeline
from illicitflows.jobs.training import FittedModel, fit_scoring_model
from illicitflows.transactions.features import TransactionFeatureBuilder

UNUSED = "unused"


def add_risk_memory(builder: TransactionFeatureBuilder, frame: pd.DataFrame,
                    features: pd.DataFrame, y: np.ndarray, splits: np.ndarray,
                    pipeline: TransactionsPipeline) -> pd.DataFrame:
    """Fit the first stage on ``features`` (the base features), attach it to ``builder`` and add
    the memory columns to ``features`` in place (no copy of the large base matrix)."""
    scores = np.empty(len(frame))
    for fit_rows, held_out in _time_halves(frame, splits):
        fitted = _first_stage(features, y, _only_train(splits, fit_rows), builder, pipeline)
        scores[held_out] = fitted.scores[held_out]
    full = _first_stage(features, y, splits, builder, pipeline)
    outside = splits != "train"
    scores[outside] = full.scores[outside]
    builder.attach_memory(full.model, full.threshold)
    memory = builder.memory_features(frame, scores)
    for name in memory.columns:
        features[name] = memory[name].to_numpy()
    return features


def _first_stage(features: pd.DataFrame, y: np.ndarray, splits: np.ndarray,
                 builder: TransactionFeatureBuilder,
                 pipeline: TransactionsPipeline) -> FittedModel:
    """A first-stage model on the base features (the memory columns do not exist yet)."""
    return fit_scoring_model(features, y, splits, pipeline.model, pipeline.threshold,
                             builder.categorical_features, pipeline.seed)


def _time_halves(frame: pd.DataFrame,
                 splits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit on, score) row pairs: the earlier and the later half of the training period."""
    rows = np.flatnonzero(splits == "train")
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[s]")[rows]
    ordered = rows[np.argsort(stamps, kind="stable")]
    early, late = ordered[: len(ordered) // 2], ordered[len(ordered) // 2:]
    return [(early, late), (late, early)]


def _only_train(splits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``splits`` with only ``rows`` left in the training split."""
    out = np.where(splits == "train", UNUSED, splits).astype(object)
    out[rows] = "train"
    return out
