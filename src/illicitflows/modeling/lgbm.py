"""LightGBM classifier: imbalance-aware training with early stopping, exact TreeSHAP."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

KIND = "lightgbm"
SMALL_BATCH = 2000  # below this, one thread: OpenMP start-up costs more than it saves


class LightGBMModel:
    """A trained booster scoring feature frames (probability of the positive class)."""

    kind = KIND

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster

    @property
    def feature_names(self) -> list[str]:
        return list(self.booster.feature_name())

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Model inputs in training order (a plain array: no per-call pandas checks)."""
        return features[self.feature_names].to_numpy(dtype=np.float64)

    def _predict(self, features: pd.DataFrame, **kwargs: bool) -> np.ndarray:
        threads = 1 if len(features) < SMALL_BATCH else 0
        return self.booster.predict(self._matrix(features), num_threads=threads, **kwargs)

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return self._predict(features)

    def raw_margin(self, features: pd.DataFrame) -> np.ndarray:
        return self._predict(features, raw_score=True)

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP on the raw margin: (base values, contributions per feature)."""
        contrib = self._predict(features, pred_contrib=True)
        return contrib[:, -1], contrib[:, :-1]

    def to_text(self) -> str:
        return self.booster.model_to_string()

    @classmethod
    def from_text(cls, text: str) -> LightGBMModel:
        return cls(lgb.Booster(model_str=text))


def positive_weight(y: np.ndarray, mode: str, cap: float) -> float:
    """Weight of positives: ``sqrt`` of the class ratio, the ``ratio`` itself, or ``none``."""
    ratio = float((y == 0).sum()) / max(float((y == 1).sum()), 1.0)
    weights = {"none": 1.0, "sqrt": np.sqrt(ratio), "ratio": ratio}
    if mode not in weights:
        raise ValueError(f"unknown imbalance mode {mode!r}; use one of {sorted(weights)}")
    return float(min(weights[mode], cap))


def train_lightgbm(x_train: pd.DataFrame, y_train: np.ndarray, x_valid: pd.DataFrame,
                   y_valid: np.ndarray, params: dict[str, Any], categorical: list[str],
                   num_boost_round: int, early_stopping_rounds: int,
                   sample_weight: np.ndarray | None = None) -> LightGBMModel:
    """Train on ``x_train``, stop early on validation average precision."""
    params = {"objective": "binary", "metric": "average_precision", "verbosity": -1,
              "deterministic": True, "force_row_wise": True, **params}
    cats = [c for c in categorical if c in x_train.columns]
    train = lgb.Dataset(x_train, y_train, weight=sample_weight, categorical_feature=cats,
                        free_raw_data=True)
    valid = lgb.Dataset(x_valid, y_valid, categorical_feature=cats, reference=train)
    booster = lgb.train(params, train, num_boost_round=num_boost_round, valid_sets=[valid],
                        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)])
    booster.free_dataset()
    return LightGBMModel(booster)
