"""Choosing the alert threshold on validation data: best F1, or an alert budget."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import precision_recall_curve

ThresholdPolicy = Literal["max_f1", "budget"]


def max_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score threshold with the highest F1 of the positive class."""
    if not (y == 1).any():
        raise ValueError("validation data has no positive record: cannot choose a threshold "
                         "by F1; use the budget policy")
    precision, recall, thresholds = precision_recall_curve(y, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def budget_threshold(score: np.ndarray, budget: float) -> float:
    """The threshold that flags about ``budget`` (a share) of the records."""
    if not 0 < budget < 1:
        raise ValueError(f"alert budget must be a share between 0 and 1, got {budget}")
    k = max(1, int(round(budget * len(score))))
    return float(np.sort(score)[::-1][k - 1])


def choose_threshold(y: np.ndarray | None, score: np.ndarray, policy: ThresholdPolicy,
                     budget: float) -> float:
    """Apply the configured policy."""
    if policy == "budget" or y is None:
        return budget_threshold(score, budget)
    return max_f1_threshold(y, score)
