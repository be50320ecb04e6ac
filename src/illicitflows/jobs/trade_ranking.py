"""The trade ranking step: fit the revenue head, rank the validation and test declarations by
every policy, and build the served :class:`~illicitflows.modeling.ranking.Ranking`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.jobs.config import TradePipeline
from illicitflows.jobs.training import lightgbm_params
from illicitflows.modeling.metrics import INSPECTION_RATES, inspection_metrics, ranking_metrics
from illicitflows.modeling.ranking import (
    RANKING_POLICIES,
    Ranking,
    RankingPolicy,
    choose_exponent,
    log_value,
    priority_points,
)
from illicitflows.modeling.revenue import train_revenue_head

#: The plain product p x r, reported beside the guarded one when the guard changed it.
PLAIN = "expected-revenue-plain"


@dataclass
class RankedPolicies:
    """The served ranking and what every policy achieved on validation and test data."""

    ranking: Ranking
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    guard: dict[str, Any] | None = None
    note: str | None = None  # why the configured policy is not served, when it is not

    def document(self) -> dict[str, Any]:
        out = {"policy": self.ranking.policy, "exponent": self.ranking.exponent,
               "guard": self.guard, "policies": self.policies}
        return out if self.note is None else {**out, "note": self.note}


def _policy_metrics(y: np.ndarray, value: np.ndarray, revenue: np.ndarray) -> dict[str, Any]:
    return {**inspection_metrics(y, value, revenue), **ranking_metrics(y, value)}


def rank_policies(features: pd.DataFrame, y: np.ndarray, revenue: np.ndarray,
                  probability: np.ndarray, splits: np.ndarray, categorical: list[str],
                  pipeline: TradePipeline) -> RankedPolicies:
    """Fit the revenue head on the training frauds, evaluate every policy on the validation
    and test rows (``probability`` is the fraud model's score there), and calibrate the
    configured policy's inspection priority on the validation rows."""
    valid, test = splits == "valid", splits == "test"
    if not ((y == 1) & (splits == "train")).any() or not ((y == 1) & valid).any():
        # no revenue model can be fitted: rank by probability, and say so
        policies = {"precision": {split: _policy_metrics(
            y[rows], log_value("precision", 1.0, probability[rows], None),
            np.nan_to_num(revenue[rows])) for split, rows in (("valid", valid), ("test", test))}}
        return RankedPolicies(Ranking("precision"), policies, note="no fraud in the training "
                              "or validation split to fit the revenue model on")
    head_config = pipeline.revenue_model
    params = {**lightgbm_params(pipeline.model, y[splits == "train"], pipeline.seed),
              **head_config.params}
    head = train_revenue_head(features, y, revenue, splits, params, categorical,
                              head_config.num_boost_round, head_config.early_stopping_rounds)
    evaluated = splits != "train"
    predicted = np.full(len(features), np.nan)
    predicted[evaluated] = Ranking("revenue", revenue_model=head).predicted_revenue(
        features[evaluated])
    known = np.nan_to_num(revenue)

    exponent, guard = 1.0, None
    if pipeline.ranking_guard is not None:
        g = pipeline.ranking_guard
        choice = choose_exponent(y[valid], probability[valid], predicted[valid], known[valid],
                                 g.budget, g.min_precision)
        guard = {"budget": g.budget, "min_precision": g.min_precision,
                 "exponent": choice.exponent, "candidates": choice.candidates}
        exponent = choice.exponent if choice.exponent is not None else np.inf

    def values(policy: RankingPolicy, power: float, rows: np.ndarray) -> np.ndarray:
        if policy == "expected-revenue" and not np.isfinite(power):
            policy = "precision"  # no exponent held the guard: the probability alone
        return log_value(policy, power, probability[rows], predicted[rows])

    variants: dict[str, tuple[RankingPolicy, float]] = {
        name: (name, exponent if name == "expected-revenue" else 1.0)
        for name in RANKING_POLICIES}
    if exponent != 1.0:
        variants[PLAIN] = ("expected-revenue", 1.0)
    policies = {name: {split: _policy_metrics(y[rows], values(policy, power, rows), known[rows])
                       for split, rows in (("valid", valid), ("test", test))}
                for name, (policy, power) in variants.items()}

    served: RankingPolicy = pipeline.ranking
    served_exponent = exponent if served == "expected-revenue" else 1.0
    if served == "expected-revenue" and not np.isfinite(served_exponent):
        served, served_exponent = "precision", 1.0
    ranking = Ranking(served, served_exponent, None if served == "precision" else head)
    if served != "precision":
        ranking.points = priority_points(values(served, served_exponent, valid))
    return RankedPolicies(ranking, policies, guard)


def policy_table(policies: dict[str, dict[str, Any]], baseline: dict[str, Any] | None,
                 served: str) -> pd.DataFrame:
    """Precision, recall and revenue caught at each inspection rate on the test split, one row
    per policy and rate (and the raw baseline's when it ran)."""
    runs = {name: metrics["test"] for name, metrics in policies.items()}
    if baseline:
        runs["baseline (raw LightGBM)"] = baseline
    rows = [{"policy": name, "served": name == served, "inspection_rate_pct": n,
             "precision": metrics["precision_at"][str(n)],
             "recall": metrics["recall_at"][str(n)],
             "revenue": metrics["revenue_at"][str(n)]}
            for name, metrics in runs.items() for n in INSPECTION_RATES]
    return pd.DataFrame(rows)
