"""Inspection ranking policies: each ranks as specified, the precision guard picks the
exponent, the inspection priority is a strictly increasing score in [0, 1], and a detector
with a ranking scores the same after saving and loading."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import LightGBMModel
from illicitflows.modeling.ranking import (
    Ranking,
    choose_exponent,
    log_value,
    priority,
    priority_points,
    wilson_lower,
)


class RevenueStub:
    """A revenue model predicting ``log1p`` of a column of the features."""

    def score(self, features: pd.DataFrame) -> np.ndarray:
        return np.log1p(features["revenue"].to_numpy())


def ranked(values: np.ndarray) -> list[int]:
    return list(np.argsort(-values, kind="stable"))


P = np.array([0.9, 0.5, 0.2, 0.99, 0.05])
R = np.array([10.0, 1000.0, 50.0, 1.0, 100000.0])
FEATURES = pd.DataFrame({"revenue": R})


def calibrated(policy: str, exponent: float = 1.0) -> Ranking:
    ranking = Ranking(policy, exponent, RevenueStub())  # type: ignore[arg-type]
    reference = np.random.default_rng(0)
    p, r = reference.uniform(0, 1, 500), reference.lognormal(5, 2, 500)
    ranking.points = priority_points(log_value(policy, exponent, p, r))  # type: ignore[arg-type]
    return ranking


def test_precision_ranks_by_probability_and_keeps_it_as_the_score() -> None:
    ranking = Ranking("precision")
    np.testing.assert_array_equal(ranking.score(P, FEATURES), P)


def test_revenue_ranks_by_predicted_revenue() -> None:
    scores = calibrated("revenue").score(P, FEATURES)
    assert ranked(scores) == ranked(R) == [4, 1, 2, 0, 3]


@pytest.mark.parametrize("exponent", [1.0, 4.0, 16.0])
def test_expected_revenue_ranks_by_probability_to_the_exponent_times_revenue(
        exponent: float) -> None:
    scores = calibrated("expected-revenue", exponent).score(P, FEATURES)
    assert ranked(scores) == ranked(P ** exponent * R)
    assert ((scores > 0) & (scores < 1)).all()


def test_priority_is_strictly_increasing_beyond_the_reference_range() -> None:
    points = priority_points(np.linspace(0.0, 10.0, 200))
    values = np.array([-50.0, -5.0, 0.0, 2.5, 5.0, 10.0, 15.0, 100.0])
    out = priority(values, points)
    assert (np.diff(out) > 0).all() and out[0] > 0 and out[-1] < 1
    assert abs(priority(np.array([5.0]), points)[0] - 0.5) < 0.01  # the median is the middle


def test_wilson_lower_bound() -> None:
    assert wilson_lower(0, 0) == 0.0
    assert abs(wilson_lower(95, 100) - 0.9003) < 1e-3  # one-sided 95 %
    assert wilson_lower(950, 1000) > wilson_lower(95, 100)


def test_the_guard_takes_the_most_revenue_that_keeps_precision() -> None:
    """Cheap frauds are certain, costly records are half frauds: the plain product fills the
    budget with the costly ones; a larger exponent keeps precision and as much revenue as it
    allows."""
    rng = np.random.default_rng(1)
    n = 4000
    costly = rng.random(n) < 0.03
    y = np.where(costly, rng.random(n) < 0.5, rng.random(n) < 0.08).astype(int)
    p = np.where(y == 1, np.where(costly, 0.55, 0.97), np.where(costly, 0.45, 0.02))
    p = np.clip(p + rng.normal(0, 0.01, n), 0.001, 0.999)
    revenue = np.where(costly, 1000.0, 10.0) * y
    predicted = np.where(costly, 1000.0, 10.0)
    choice = choose_exponent(y, p, predicted, revenue, budget=0.05, min_precision=0.9)
    by_exponent = {c["exponent"]: c for c in choice.candidates}
    assert by_exponent[1.0]["precision_lower_bound"] < 0.9
    assert choice.exponent is not None and choice.exponent > 1.0
    holding = [c for c in choice.candidates if c["precision_lower_bound"] >= 0.9]
    assert by_exponent[choice.exponent]["revenue"] == max(c["revenue"] for c in holding)
    impossible = choose_exponent(y, p, predicted, revenue, budget=0.05, min_precision=0.999)
    assert impossible.exponent is None


def test_a_detector_with_a_ranking_scores_the_same_after_loading(tmp_path) -> None:
    rng = np.random.default_rng(2)
    features = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = (features["a"] > 0.5).to_numpy(dtype=int)
    params = {"verbosity": -1, "num_leaves": 4, "seed": 0, "num_threads": 1}
    classifier = lgb.train({**params, "objective": "binary"}, lgb.Dataset(features, y), 20)
    head = lgb.train({**params, "objective": "regression"},
                     lgb.Dataset(features, np.exp(features["b"].to_numpy())), 20)
    ranking = Ranking("expected-revenue", 3.0, LightGBMModel(head))
    probability = LightGBMModel(classifier).score(features)
    ranking.points = priority_points(log_value(
        "expected-revenue", 3.0, probability, ranking.predicted_revenue(features)))
    detector = Detector("trade", None, LightGBMModel(classifier), 0.95,  # type: ignore[arg-type]
                        ranking=ranking)
    scores = detector.score_features(features)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert 0.03 <= (scores >= 0.95).mean() <= 0.07  # the threshold is a share of the ranking
    detector.builder = _PicklableBuilder()
    loaded = Detector.load(detector.save(tmp_path / "detector"))
    assert loaded.ranking is not None and loaded.ranking.policy == "expected-revenue"
    np.testing.assert_allclose(loaded.score_features(features), scores, rtol=1e-12)


class _PicklableBuilder:
    version = "test"
    feature_names = ["a", "b"]


def test_without_frauds_to_learn_revenue_from_the_ranking_is_by_probability() -> None:
    from illicitflows.jobs.config import TradePipeline
    from illicitflows.jobs.trade_ranking import rank_policies

    n = 60
    splits = np.array(["train"] * 20 + ["valid"] * 20 + ["test"] * 20)
    y = np.zeros(n, dtype=int)
    y[45] = 1  # a fraud in the test split only
    features = pd.DataFrame({"a": np.arange(n, dtype=float)})
    probability = np.linspace(0.0, 1.0, n)
    ranked = rank_policies(features, y, y * 100.0, probability, splits, [], TradePipeline())
    assert ranked.ranking.policy == "precision"
    assert "no fraud" in ranked.document()["note"]
    assert set(ranked.policies) == {"precision"}
