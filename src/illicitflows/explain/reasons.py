"""Reasons from TreeSHAP: the features that pushed a record's score up, as red-flag sentences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from illicitflows.feature_spec import FeatureSpec
from illicitflows.modeling.detector import Detector

DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class Reason:
    """One reason: the feature, its value, its SHAP contribution, family and sentence."""

    feature: str
    value: float | None
    contribution: float
    family: str
    sentence: str

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution,
                "family": self.family, "sentence": self.sentence}


@dataclass(frozen=True)
class Explanation:
    """Exact contributions on the model's raw margin: ``base + sum(contributions) == margin``."""

    base_value: float
    contributions: dict[str, float]
    reasons: list[Reason]

    def as_dict(self) -> dict[str, object]:
        return {"base_value": self.base_value, "contributions": self.contributions,
                "reasons": [r.as_dict() for r in self.reasons]}


def explain(detector: Detector, features: pd.DataFrame,
            top_k: int = DEFAULT_TOP_K) -> list[Explanation]:
    """Explain every row of ``features`` (one TreeSHAP call for the whole batch)."""
    if features.empty:
        return []
    base, contributions = detector.model.contributions(features)
    specs = {spec.name: spec for spec in detector.builder.specs}
    names = list(features.columns)
    values = features.to_numpy(dtype=np.float64)
    return [_explanation(float(base[i]), contributions[i], values[i], names, specs, top_k)
            for i in range(len(features))]


def _explanation(base: float, contrib: np.ndarray, values: np.ndarray, names: list[str],
                 specs: dict[str, FeatureSpec], top_k: int) -> Explanation:
    order = np.argsort(-contrib, kind="stable")
    reasons = []
    for j in order[:top_k]:
        if contrib[j] <= 0:
            break
        spec = specs[names[j]]
        value = float(values[j])
        reasons.append(Reason(feature=spec.name, value=None if np.isnan(value) else value,
                              contribution=float(contrib[j]), family=spec.family,
                              sentence=spec.reason(value)))
    return Explanation(base_value=base,
                       contributions={n: float(c) for n, c in zip(names, contrib, strict=True)},
                       reasons=reasons)
