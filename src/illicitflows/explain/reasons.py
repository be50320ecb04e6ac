"""Reasons from TreeSHAP: the features that pushed a record's score up, as red-flag sentences,
and, for a record left below the threshold, the features that held its score down.

A reason's ``direction`` says which: ``raises`` (a red flag) or ``lowers`` (what kept the
score low). Flagged records get only their red flags, so roll-ups, networks and reports built
from a flagged record's reasons read red flags only. Contributions are those of the fraud or
laundering model's margin (a trade detector ranking by expected revenue still explains why a
declaration looks fraudulent)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from illicitflows.feature_spec import FeatureSpec
from illicitflows.modeling.detector import Detector

DEFAULT_TOP_K = 5
RAISES = "raises"
LOWERS = "lowers"


@dataclass(frozen=True)
class Reason:
    """One reason: the feature, its value, its SHAP contribution, family, sentence and whether
    it raised or lowered the score."""

    feature: str
    value: float | None
    contribution: float
    family: str
    sentence: str
    direction: str = RAISES

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution,
                "family": self.family, "sentence": self.sentence, "direction": self.direction}


@dataclass(frozen=True)
class Explanation:
    """Exact contributions on the model's raw margin: ``base + sum(contributions) == margin``."""

    base_value: float
    contributions: dict[str, float]
    reasons: list[Reason]

    def as_dict(self) -> dict[str, object]:
        return {"base_value": self.base_value, "contributions": self.contributions,
                "reasons": [r.as_dict() for r in self.reasons]}


def explain(detector: Detector, features: pd.DataFrame, top_k: int = DEFAULT_TOP_K,
            flagged: np.ndarray | None = None) -> list[Explanation]:
    """Explain every row of ``features`` (one TreeSHAP call for the whole batch): its ``top_k``
    red flags and, for rows not ``flagged`` (by default: scored below the detector's
    threshold), also the ``top_k`` features that lowered the score most."""
    if features.empty:
        return []
    base, contributions = detector.model.contributions(features)
    if flagged is None:
        flagged = detector.score_features(features) >= detector.threshold
    specs = {spec.name: spec for spec in detector.builder.specs}
    names = list(features.columns)
    values = features.to_numpy(dtype=np.float64)
    return [_explanation(float(base[i]), contributions[i], values[i], names, specs, top_k,
                         bool(flagged[i]))
            for i in range(len(features))]


def _reasons(contrib: np.ndarray, values: np.ndarray, names: list[str],
             specs: dict[str, FeatureSpec], top_k: int, direction: str) -> list[Reason]:
    """The ``top_k`` features that moved the margin most in ``direction``."""
    sign = 1.0 if direction == RAISES else -1.0
    order = np.argsort(-sign * contrib, kind="stable")
    reasons = []
    for j in order[:top_k]:
        if sign * contrib[j] <= 0:
            break
        spec = specs[names[j]]
        value = float(values[j])
        reasons.append(Reason(feature=spec.name, value=None if np.isnan(value) else value,
                              contribution=float(contrib[j]), family=spec.family,
                              sentence=spec.reason(value, raises=direction == RAISES),
                              direction=direction))
    return reasons


def _explanation(base: float, contrib: np.ndarray, values: np.ndarray, names: list[str],
                 specs: dict[str, FeatureSpec], top_k: int, flagged: bool) -> Explanation:
    reasons = _reasons(contrib, values, names, specs, top_k, RAISES)
    if not flagged:
        reasons += _reasons(contrib, values, names, specs, top_k, LOWERS)
    return Explanation(base_value=base,
                       contributions={n: float(c) for n, c in zip(names, contrib, strict=True)},
                       reasons=reasons)
