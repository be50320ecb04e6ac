"""Ranking policies for inspection: which records fill an inspection budget first.

A customs unit inspecting a share of declarations wants both many frauds (precision) and most
of the revenue at stake. Three policies rank by the fraud probability ``p`` and a second
model's prediction ``r`` of the revenue at stake should the record be a fraud:

- ``precision``: ``p`` alone;
- ``revenue``: ``r`` alone (where a fraud would cost most, however likely it is);
- ``expected-revenue``: ``p ** g * r``. With ``g = 1`` it is the expected recovered revenue
  (DATE, KDD 2020); a larger ``g`` trusts the probability more. With a precision guard the
  exponent is chosen on validation data: among :data:`EXPONENTS`, the one that recovers the
  most validation revenue at the budget while the validation precision at the budget holds the
  guard with 95 % confidence (Wilson lower bound); when none does, ``p`` alone.

The detector's score is the policy's *inspection priority*: the share of the validation
records ranked below the record by the policy (continuous and strictly increasing in the
policy's value, also beyond the validation range), so it stays in (0, 1) and a threshold on it
means "this far up the ranking". For ``precision`` the score stays the probability itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from illicitflows.modeling.lgbm import LightGBMModel
from illicitflows.modeling.metrics import top_k_mask

RankingPolicy = Literal["precision", "revenue", "expected-revenue"]
RANKING_POLICIES: tuple[RankingPolicy, ...] = ("precision", "revenue", "expected-revenue")
#: Exponents of ``p`` tried by the precision guard (1 = plain expected revenue).
EXPONENTS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
#: One-sided 95 % normal quantile of the guard's Wilson lower bound.
GUARD_Z = 1.645
#: Quantile points of the validation values kept to map values to priorities.
PRIORITY_POINTS = 1001
_TINY = 1e-300


def log_value(policy: RankingPolicy, exponent: float, probability: np.ndarray,
              revenue: np.ndarray | None) -> np.ndarray:
    """The policy's ranking value, in logs (``p ** g`` underflows for large ``g``)."""
    if policy == "precision":
        return np.log(np.maximum(probability, _TINY))
    if revenue is None:
        raise ValueError(f"the {policy!r} ranking needs the revenue model's predictions")
    log_revenue = np.log(np.maximum(revenue, _TINY))
    if policy == "revenue":
        return log_revenue
    return exponent * np.log(np.maximum(probability, _TINY)) + log_revenue


def wilson_lower(hits: int, n: int, z: float = GUARD_Z) -> float:
    """Lower bound of the Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


@dataclass(frozen=True)
class GuardChoice:
    """The exponent the guard chose and what it saw on validation for every candidate."""

    exponent: float | None  # None: no candidate held the guard, rank by probability
    candidates: list[dict[str, float]]


def choose_exponent(y: np.ndarray, probability: np.ndarray, predicted_revenue: np.ndarray,
                    revenue: np.ndarray, budget: float, min_precision: float) -> GuardChoice:
    """The exponent recovering the most ``revenue`` of the positives among the top ``budget``
    share while the precision there holds ``min_precision`` with 95 % confidence."""
    total = float(np.sum(revenue * (y == 1))) or 1.0
    best: float | None = None
    best_revenue = -1.0
    candidates = []
    for exponent in EXPONENTS:
        mask = top_k_mask(log_value("expected-revenue", exponent, probability,
                                    predicted_revenue), budget)
        hits = mask & (y == 1)
        precision_low = wilson_lower(int(hits.sum()), int(mask.sum()))
        recovered = float(np.sum(revenue[hits])) / total
        candidates.append({"exponent": exponent, "precision": float(hits.sum() / mask.sum()),
                           "precision_lower_bound": precision_low, "revenue": recovered})
        if precision_low >= min_precision and recovered > best_revenue:
            best, best_revenue = exponent, recovered
    return GuardChoice(best, candidates)


def priority_points(values: np.ndarray, points: int = PRIORITY_POINTS) -> np.ndarray:
    """Quantiles of the (log) values at evenly spaced levels strictly inside (0, 1)."""
    finite = np.sort(values[np.isfinite(values)])
    if not len(finite):
        raise ValueError("no finite ranking value to calibrate the inspection priority on")
    levels = (np.arange(points) + 0.5) / points
    return np.quantile(finite, levels)


def priority(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Share of the reference records ranked below each value: the points' levels
    interpolated, with hyperbolic tails beyond them (the remaining share divided by one plus
    the distance), so the map stays strictly increasing: values beyond the reference do not
    tie at 0 or 1 (exponential tails did, within float precision, on log values)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    levels = (np.arange(n) + 0.5) / n
    keys, first = np.unique(points, return_index=True)
    last = np.append(first[1:] - 1, n - 1)
    levels = (levels[first] + levels[last]) / 2  # a repeated value sits mid-way in its run
    out = np.interp(values, keys, levels)
    low, high = values < keys[0], values > keys[-1]
    out[low] = levels[0] / (1 + keys[0] - values[low])
    out[high] = 1 - (1 - levels[-1]) / (1 + values[high] - keys[-1])
    return out


@dataclass
class Ranking:
    """A detector's ranking policy: how its score is made from the fraud probability and,
    unless the policy is ``precision``, the revenue model (log1p of revenue at stake)."""

    policy: RankingPolicy
    exponent: float = 1.0
    revenue_model: LightGBMModel | None = None
    points: np.ndarray | None = None  # validation quantiles of the policy's log value

    def predicted_revenue(self, features: pd.DataFrame) -> np.ndarray | None:
        if self.revenue_model is None:
            return None
        return np.expm1(np.maximum(self.revenue_model.score(features), 0.0))

    def score(self, probability: np.ndarray, features: pd.DataFrame) -> np.ndarray:
        """The inspection priority of each record (the probability for ``precision``)."""
        if self.policy == "precision":
            return probability
        if self.points is None:
            raise ValueError("the ranking has no priority points: calibrate it first")
        value = log_value(self.policy, self.exponent, probability,
                          self.predicted_revenue(features))
        return priority(value, self.points)

    def manifest(self) -> dict[str, Any]:
        return {"policy": self.policy, "exponent": self.exponent,
                "points": None if self.points is None else self.points.tolist()}

    def to_json(self) -> str:
        return json.dumps(self.manifest())

    @classmethod
    def from_json(cls, text: str, revenue_model: LightGBMModel | None) -> Ranking:
        raw = json.loads(text)
        points = None if raw["points"] is None else np.asarray(raw["points"], dtype=np.float64)
        return cls(policy=raw["policy"], exponent=float(raw["exponent"]),
                   revenue_model=revenue_model, points=points)
