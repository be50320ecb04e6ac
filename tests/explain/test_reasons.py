"""Reasons of flagged and unflagged records: red flags for every explained record, and for a
record below the threshold also what held its score down, each with its direction."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from illicitflows.explain.reasons import LOWERS, RAISES, explain
from illicitflows.feature_spec import FeatureSpec
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import LightGBMModel
from illicitflows.transactions.features.catalog import TRANSACTION_SPECS

SPECS = [s for s in TRANSACTION_SPECS if s.name in ("weekday", "amount_usd", "round_amount_100")]


@dataclass
class SpecsOnly:
    """The part of a feature builder the explanations read."""

    specs: list[FeatureSpec]


def small_detector(threshold: float = 0.5) -> tuple[Detector, pd.DataFrame]:
    """Laundering on Sundays with large round amounts; a model fitted to it."""
    rng = np.random.default_rng(0)
    n = 3000
    features = pd.DataFrame({"amount_usd": rng.lognormal(7, 1, n),
                             "round_amount_100": rng.integers(0, 2, n).astype(float),
                             "weekday": rng.integers(0, 7, n).astype(float)})
    y = ((features["weekday"] == 6) & (features["amount_usd"] > 1000)
         & (features["round_amount_100"] == 1)).to_numpy(dtype=int)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 7, "seed": 0,
                         "num_threads": 1}, lgb.Dataset(features, y), num_boost_round=40)
    detector = Detector("transactions", SpecsOnly(SPECS), LightGBMModel(booster),  # type: ignore[arg-type]
                        threshold)
    return detector, features


def test_flagged_records_get_red_flags_only_and_unflagged_ones_both_sides() -> None:
    detector, features = small_detector()
    suspicious = features.assign(weekday=6.0, amount_usd=5000.0, round_amount_100=1.0).iloc[:1]
    ordinary = features.assign(weekday=1.0, amount_usd=50.0, round_amount_100=0.0).iloc[:1]
    both = pd.concat([suspicious, ordinary], ignore_index=True)
    scores = detector.score_features(both)
    assert scores[0] >= detector.threshold > scores[1]
    flagged, unflagged = explain(detector, both, top_k=3)

    assert flagged.reasons and {r.direction for r in flagged.reasons} == {RAISES}
    assert "made on a Sunday" in [r.sentence for r in flagged.reasons]
    assert all(r.contribution > 0 for r in flagged.reasons)

    lowering = [r for r in unflagged.reasons if r.direction == LOWERS]
    assert lowering and all(r.contribution < 0 for r in lowering)
    assert all(r.contribution > 0 for r in unflagged.reasons if r.direction == RAISES)
    assert "made on a Tuesday" in [r.sentence for r in lowering]
    assert "not a round amount" in [r.sentence for r in lowering]
    record = lowering[0].as_dict()
    assert {"feature", "value", "contribution", "family", "sentence"} <= set(record)
    assert record["direction"] == LOWERS


def test_the_caller_may_say_which_records_are_flagged() -> None:
    detector, features = small_detector()
    ordinary = features.assign(weekday=1.0, amount_usd=50.0, round_amount_100=0.0).iloc[:1]
    (explained,) = explain(detector, ordinary, top_k=2, flagged=np.array([True]))
    assert {r.direction for r in explained.reasons} <= {RAISES}
    (explained,) = explain(detector, ordinary, top_k=2)
    assert LOWERS in {r.direction for r in explained.reasons}
    assert len([r for r in explained.reasons if r.direction == LOWERS]) <= 2


def test_contributions_still_add_up_to_the_margin() -> None:
    detector, features = small_detector()
    rows = features.iloc[:20]
    margins = detector.model.raw_margin(rows)
    for explained, margin in zip(explain(detector, rows), margins, strict=True):
        total = explained.base_value + sum(explained.contributions.values())
        assert abs(total - margin) < 1e-6
