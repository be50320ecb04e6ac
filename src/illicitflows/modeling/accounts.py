"""Account review: rank the accounts active in a period from their transfers' risk scores.

An FIU works on accounts and networks over a period, not only on single transfers as they
happen. For each account active in the period, :func:`account_table` aggregates the risk scores
of its transfers (sent and received) and its activity, then propagates over the period's
transfer graph: what its counterparties' transfers scored (one hop), and what their
counterparties' did (two hops). :class:`AccountRanker` is a small LightGBM on that table. It
reads only the transfers' scores, amounts and counterparties, so the same recipe ranks accounts
from any detector's transaction scores (the peer's included).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

#: The account features, in model order (``own_*``: the account's transfers; ``hop1_*``: its
#: counterparties' own scores; ``hop2_*``: their counterparties').
OWN = ("own_score_max", "own_score_mean", "own_score_top3", "own_score_sum", "own_alerts",
       "own_sent_score_max", "own_received_score_max", "own_transfers", "own_sent",
       "own_received", "own_amount_sent", "own_amount_received", "own_flow_balance",
       "own_counterparties", "own_active_days")
HOP1 = ("hop1_score_max", "hop1_score_mean", "hop1_alert_share", "hop1_sum_max")
HOP2 = ("hop2_score_max", "hop2_score_mean")
ACCOUNT_FEATURES = (*OWN, *HOP1, *HOP2)
#: Small and strongly regularised: a few hundred flagged accounts at most.
RANKER_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 7,
                 "min_child_samples": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                 "bagging_freq": 1, "lambda_l2": 1.0, "verbose": -1, "num_threads": 1}
MAX_NEGATIVES = 100_000  # unflagged accounts fitted on at most (weighted up): bounds the cost
MAX_ROUNDS = 400
PATIENCE = 40
HOLDOUT = 0.25
DAY_S = 86_400


@dataclass(frozen=True)
class PeriodTransfers:
    """The transfers of a review period: account keys, risk scores, USD amounts, seconds."""

    senders: np.ndarray
    receivers: np.ndarray
    scores: np.ndarray
    amounts: np.ndarray
    seconds: np.ndarray


def account_table(period: PeriodTransfers, threshold: float) -> pd.DataFrame:
    """One row per account active in the period (index: account key), columns
    :data:`ACCOUNT_FEATURES`; ``threshold`` is the transfers' alert level."""
    n = len(period.scores)
    codes, accounts = pd.factorize(np.concatenate([period.senders, period.receivers]))
    k = len(accounts)
    sent, received = codes[:n], codes[n:]
    score = np.asarray(period.scores, dtype=np.float64)
    both = np.concatenate([sent, received])
    both_score = np.concatenate([score, score])
    table = {name: np.zeros(k) for name in ACCOUNT_FEATURES}
    table["own_score_max"] = _group_max(both, both_score, k)
    table["own_sent_score_max"] = _group_max(sent, score, k)
    table["own_received_score_max"] = _group_max(received, score, k)
    table["own_transfers"] = np.bincount(both, minlength=k).astype(np.float64)
    table["own_score_sum"] = np.bincount(both, both_score, minlength=k)
    table["own_score_mean"] = table["own_score_sum"] / np.maximum(table["own_transfers"], 1)
    table["own_score_top3"] = _top3_mean(both, both_score, k)
    table["own_alerts"] = np.bincount(both, both_score >= threshold, minlength=k)
    table["own_sent"] = np.bincount(sent, minlength=k).astype(np.float64)
    table["own_received"] = np.bincount(received, minlength=k).astype(np.float64)
    table["own_amount_sent"] = np.bincount(sent, period.amounts, minlength=k)
    table["own_amount_received"] = np.bincount(received, period.amounts, minlength=k)
    table["own_flow_balance"] = (table["own_amount_sent"] - table["own_amount_received"]) / (
        table["own_amount_sent"] + table["own_amount_received"] + 1e-9)
    pairs = np.unique(np.stack([np.concatenate([sent, received]),
                                np.concatenate([received, sent])]), axis=1)
    table["own_counterparties"] = np.bincount(pairs[0], minlength=k).astype(np.float64)
    days = np.unique(np.stack([both, np.concatenate([period.seconds, period.seconds])
                               // DAY_S]), axis=1)
    table["own_active_days"] = np.bincount(days[0], minlength=k).astype(np.float64)
    account, other = pairs
    other_max = table["own_score_max"][other]
    table["hop1_score_max"] = _group_max(account, other_max, k)
    table["hop1_score_mean"] = _group_mean(account, other_max, k)
    table["hop1_alert_share"] = _group_mean(account, table["own_alerts"][other] > 0, k)
    table["hop1_sum_max"] = _group_max(account, table["own_score_sum"][other], k)
    table["hop2_score_max"] = _group_max(account, table["hop1_score_mean"][other], k)
    table["hop2_score_mean"] = _group_mean(account, table["hop1_score_mean"][other], k)
    return pd.DataFrame(table, index=pd.Index(accounts, name="account"))[list(ACCOUNT_FEATURES)]


class AccountRanker:
    """LightGBM over :func:`account_table`: probability that an account launders."""

    def __init__(self, booster: lgb.Booster, threshold: float = 0.5) -> None:
        self.booster = booster
        self.threshold = threshold

    @classmethod
    def fit(cls, table: pd.DataFrame, labels: np.ndarray, seed: int = 0) -> AccountRanker:
        """Fit on ``table``'s accounts: stopped early on a random quarter of them, then the
        alert threshold is the one with the best F1 on that quarter."""
        labels = np.asarray(labels, dtype=np.int8)
        if labels.min(initial=1) == labels.max(initial=0):
            raise ValueError("the account ranker needs flagged and unflagged accounts in its "
                             "training period")
        rng = np.random.default_rng(seed)
        negatives = int((labels == 0).sum())
        share = min(1.0, MAX_NEGATIVES / max(negatives, 1))
        kept = (labels == 1) | (rng.random(len(labels)) < share)
        table, labels = table[kept], labels[kept]
        weight = np.where(labels == 1, 1.0, 1.0 / share)
        held = rng.random(len(labels)) < HOLDOUT
        if labels[held].max(initial=0) == 0 or labels[~held].max(initial=0) == 0:
            held = np.arange(len(labels)) % 4 == 0
        train = lgb.Dataset(table[~held], labels[~held], weight=weight[~held],
                            free_raw_data=False)
        valid = lgb.Dataset(table[held], labels[held], weight=weight[held], reference=train)
        booster = lgb.train({**RANKER_PARAMS, "seed": seed}, train, MAX_ROUNDS,
                            valid_sets=[valid],
                            callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])
        ranker = cls(booster)
        ranker.threshold = _best_f1_threshold(labels[held], ranker.score(table[held]))
        return ranker

    def score(self, table: pd.DataFrame) -> np.ndarray:
        if table.empty:
            return np.zeros(0)
        return self.booster.predict(table[list(ACCOUNT_FEATURES)],
                                    num_iteration=self.booster.best_iteration or None)

    def contributions(self, table: pd.DataFrame) -> np.ndarray:
        """TreeSHAP contributions per account feature (the last column is the base value)."""
        return self.booster.predict(table[list(ACCOUNT_FEATURES)], pred_contrib=True,
                                    num_iteration=self.booster.best_iteration or None)

    def to_text(self) -> str:
        return f"{self.threshold!r}\n" + self.booster.model_to_string()

    @classmethod
    def from_text(cls, text: str) -> AccountRanker:
        threshold, model = text.split("\n", 1)
        return cls(lgb.Booster(model_str=model), float(threshold))


def _group_max(group: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(k)
    np.maximum.at(out, group, np.asarray(values, dtype=np.float64))
    return out


def _group_mean(group: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    total = np.bincount(group, np.asarray(values, dtype=np.float64), minlength=k)
    return total / np.maximum(np.bincount(group, minlength=k), 1)


def _top3_mean(group: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Mean of each group's three highest values (fewer when it has fewer)."""
    order = np.lexsort((-values, group))
    g, v = group[order], values[order]
    start = np.searchsorted(g, g, side="left")
    top = (np.arange(len(g)) - start) < 3
    total = np.bincount(g[top], v[top], minlength=k)
    return total / np.maximum(np.bincount(g[top], minlength=k), 1)


def _best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(-score, kind="stable")
    hits = np.cumsum(y[order])
    precision = hits / np.arange(1, len(y) + 1)
    recall = hits / max(int(y.sum()), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12),
                  0)
    return float(score[order][int(np.argmax(f1))]) if len(y) else 0.5
