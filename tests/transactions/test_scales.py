"""Time scales from the data: day-stamped and minute-stamped feeds pick different horizons,
and a detector loaded back scores with the scales it was fitted with."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import LightGBMModel
from illicitflows.transactions.features import FeatureConfig, TransactionFeatureBuilder
from illicitflows.transactions.features.config import SCALE_SETS
from illicitflows.transactions.features.scales import choose_scale, measure


def transfers(n: int, step: str, span: int, seed: int = 0) -> pd.DataFrame:
    """``n`` transfers among 300 accounts over ``span`` steps of ``step`` ("D" or "min")."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(7, 1, n).round(2)
    return pd.DataFrame({
        "timestamp": pd.Timestamp("2023-03-01") + pd.to_timedelta(
            np.sort(rng.integers(0, span, n)), unit=step),
        "from_bank": "001", "from_account": rng.integers(0, 300, n).astype(str),
        "to_bank": "002", "to_account": rng.integers(0, 300, n).astype(str),
        "amount_received": amount, "receiving_currency": "US Dollar",
        "amount_paid": amount, "payment_currency": "US Dollar", "payment_format": "Wire",
    })


def test_daily_and_minute_data_pick_different_scales() -> None:
    daily, minutes = transfers(3000, "D", 150), transfers(3000, "min", 6 * 1440)
    assert measure(daily).resolution_s == 86_400 and choose_scale(measure(daily)) == "days"
    assert measure(minutes).resolution_s == 60 and choose_scale(measure(minutes)) == "hours"
    coarse = TransactionFeatureBuilder().fit(daily).config
    fine = TransactionFeatureBuilder().fit(minutes).config
    assert coarse.time_scale == "days" and fine.time_scale == "hours"
    for name, value in SCALE_SETS["days"].items():
        assert getattr(coarse, name) == value
    assert coarse.horizon_s > fine.horizon_s
    assert "sender_out_count_30d" in TransactionFeatureBuilder().fit(daily).feature_names


def test_sparse_accounts_get_day_scales_even_with_minute_stamps() -> None:
    sparse = transfers(600, "min", 150 * 1440)  # about one transfer per account a month
    assert choose_scale(measure(sparse)) == "days"


def test_explicit_horizons_and_scale_keep_their_values() -> None:
    daily = transfers(2000, "D", 150)
    config = TransactionFeatureBuilder(FeatureConfig(memory_window_h=48)).fit(daily).config
    assert config.memory_window_h == 48 and config.windows_h == SCALE_SETS["days"]["windows_h"]
    forced = TransactionFeatureBuilder(FeatureConfig(time_scale="hours")).fit(daily).config
    assert forced.windows_h == SCALE_SETS["hours"]["windows_h"]


def test_a_detector_loaded_back_scores_with_its_fitted_scales(tmp_path) -> None:
    daily = transfers(3000, "D", 150)
    builder = TransactionFeatureBuilder().fit(daily)
    features = builder.transform(daily)
    y = (np.random.default_rng(1).random(len(daily)) < 0.1).astype(int)
    booster = lgb.train({"verbose": -1, "num_leaves": 4}, lgb.Dataset(features, y),
                        num_boost_round=3)
    detector = Detector("transactions", builder, LightGBMModel(booster), 0.5)
    loaded = Detector.load(detector.save(tmp_path / "detector"))
    assert loaded.builder.config.time_scale == "days"
    assert loaded.builder.config.windows_h == builder.config.windows_h
    pd.testing.assert_frame_equal(loaded.builder.transform(daily), features)
