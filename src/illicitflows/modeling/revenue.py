"""The revenue head: a LightGBM regression of the revenue at stake of a fraud.

Fitted on the fraudulent training records only (what a fraud *here* would cost), on
``log1p(revenue)`` so that a few very large cases do not dominate the fit; it stops early on
the squared error of the fraudulent validation records. The ranking policies combine its
prediction with the fraud probability (see :mod:`illicitflows.modeling.ranking`).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from illicitflows.modeling.lgbm import LightGBMModel, booster_params, lightgbm_dataset

#: Objective and metric of the head; other LightGBM parameters come from the pipeline.
REGRESSION = {"objective": "regression", "metric": "l2"}


def train_revenue_head(features: pd.DataFrame, y: np.ndarray, revenue: np.ndarray,
                       splits: np.ndarray, params: dict[str, Any], categorical: list[str],
                       num_boost_round: int, early_stopping_rounds: int) -> LightGBMModel:
    """Fit ``log1p(revenue)`` on the fraudulent ``train`` rows, stop early on the fraudulent
    ``valid`` rows; raises when either split has no fraud with a known revenue."""
    known = (y == 1) & np.isfinite(revenue)
    train = np.flatnonzero(known & (splits == "train"))
    valid = np.flatnonzero(known & (splits == "valid"))
    if not len(train) or not len(valid):
        raise ValueError("the revenue model needs fraudulent declarations with a known revenue "
                         "at stake in both the training and the validation split")
    target = np.log1p(np.maximum(np.nan_to_num(revenue), 0.0))
    head = {key: value for key, value in params.items() if key != "scale_pos_weight"}
    head.update(REGRESSION)
    train_set = lightgbm_dataset(features, train, target[train], head, categorical)
    valid_set = lightgbm_dataset(features, valid, target[valid], head, categorical,
                                 reference=train_set)
    booster = lgb.train(booster_params(head), train_set, num_boost_round=num_boost_round,
                        valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)])
    return LightGBMModel(booster)
