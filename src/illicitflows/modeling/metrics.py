"""Detection metrics: minority-class F1, ranking quality, alert budgets, inspection rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

BUDGETS = (0.001, 0.005, 0.01)
INSPECTION_RATES = (1, 2, 5, 10)


def threshold_metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """F1, precision and recall of the positive class when flagging ``score >= threshold``."""
    flagged = score >= threshold
    tp = float(np.sum(flagged & (y == 1)))
    precision = tp / max(float(flagged.sum()), 1.0)
    recall = tp / max(float((y == 1).sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """PR-AUC (average precision) and ROC-AUC; NaN when only one class is present."""
    if len(np.unique(y)) < 2:
        return {"pr_auc": float("nan"), "roc_auc": float("nan")}
    return {"pr_auc": float(average_precision_score(y, score)),
            "roc_auc": float(roc_auc_score(y, score))}


def top_k_mask(score: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` highest scores (at least one record); ties broken by position."""
    k = max(1, int(round(share * len(score))))
    order = np.argsort(-score, kind="stable")
    mask = np.zeros(len(score), dtype=bool)
    mask[order[:k]] = True
    return mask


def recall_at_budgets(y: np.ndarray, score: np.ndarray,
                      budgets: Sequence[float] = BUDGETS) -> dict[str, float]:
    """Share of positives among the top ``budget`` share of records, per alert budget."""
    positives = max(float((y == 1).sum()), 1.0)
    return {f"{b:g}": float((y[top_k_mask(score, b)] == 1).sum()) / positives for b in budgets}


def recall_by_group(y: np.ndarray, flagged: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Recall among positives of each group (e.g. typology); empty groups are skipped."""
    frame = pd.DataFrame({"group": groups, "hit": flagged})[y == 1]
    frame = frame[frame["group"].astype(str) != ""]
    return {str(k): float(v) for k, v in frame.groupby("group")["hit"].mean().items()}


def inspection_metrics(y: np.ndarray, score: np.ndarray, revenue: np.ndarray,
                       rates: Sequence[int] = INSPECTION_RATES) -> dict[str, dict[str, float]]:
    """Precision, recall and share of revenue at stake caught when inspecting the top n%."""
    positives = max(float((y == 1).sum()), 1.0)
    total_revenue = float(np.sum(revenue * (y == 1))) or 1.0
    out: dict[str, dict[str, float]] = {"precision_at": {}, "recall_at": {}, "revenue_at": {}}
    for n in rates:
        mask = top_k_mask(score, n / 100)
        hits = mask & (y == 1)
        out["precision_at"][str(n)] = float(hits.sum()) / float(mask.sum())
        out["recall_at"][str(n)] = float(hits.sum()) / positives
        out["revenue_at"][str(n)] = float(np.sum(revenue[hits])) / total_revenue
    return out


def account_scores(senders: np.ndarray, receivers: np.ndarray, score: np.ndarray) -> pd.Series:
    """An account's score: the max over its transactions as sender or receiver."""
    both = pd.DataFrame({"account": np.concatenate([senders, receivers]),
                         "score": np.concatenate([score, score])})
    return both.groupby("account")["score"].max()


def account_labels_from_transactions(senders: np.ndarray, receivers: np.ndarray,
                                     y: np.ndarray) -> pd.Series:
    """An account is laundering when it sends or receives a laundering transaction."""
    both = pd.DataFrame({"account": np.concatenate([senders, receivers]),
                         "y": np.concatenate([y, y])})
    return both.groupby("account")["y"].max()


def account_pr_auc(senders: np.ndarray, receivers: np.ndarray, score: np.ndarray,
                   labels: pd.Series) -> float:
    """PR-AUC over the accounts active in the period, labels indexed by account key."""
    scores = account_scores(senders, receivers, score)
    truth = labels.reindex(scores.index).fillna(0).to_numpy(dtype=int)
    return ranking_metrics(truth, scores.to_numpy())["pr_auc"]
