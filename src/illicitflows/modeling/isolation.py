"""Label-free mode: an IsolationForest on the same features, for FIUs without labels."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import shap
from sklearn.ensemble import IsolationForest

KIND = "isolation-forest"
MISSING = -1.0  # IsolationForest takes no NaN; features are non-negative, so -1 marks "none"


class IsolationModel:
    """An IsolationForest whose score is the anomaly score (higher = more unusual)."""

    kind = KIND

    def __init__(self, forest: IsolationForest, feature_names: list[str]) -> None:
        self.forest = forest
        self.feature_names = feature_names

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num(features[self.feature_names].to_numpy(dtype=np.float64),
                             nan=MISSING, posinf=MISSING, neginf=MISSING)

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return -self.forest.score_samples(self._matrix(features))

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP of the forest's path-length output (sign flipped to match the score)."""
        explainer = shap.TreeExplainer(self.forest)
        values = explainer.shap_values(self._matrix(features))
        base = np.full(len(features), float(np.ravel(explainer.expected_value)[0]))
        return -base, -np.asarray(values)

    def to_bytes(self) -> bytes:
        return pickle.dumps((self.forest, self.feature_names))

    @classmethod
    def from_bytes(cls, blob: bytes) -> IsolationModel:
        forest, names = pickle.loads(blob)  # noqa: S301 - our own artifact
        return cls(forest, names)


def train_isolation_forest(x_train: pd.DataFrame, params: dict[str, Any],
                           seed: int) -> IsolationModel:
    """Fit an IsolationForest on training features (labels unused)."""
    names = list(x_train.columns)
    model = IsolationModel(IsolationForest(random_state=seed, n_jobs=2, **params), names)
    model.forest.fit(model._matrix(x_train))
    return model
