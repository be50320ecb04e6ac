"""The retrospective account review: rank the accounts active in a period, with reasons and the
networks they form, from everything known up to the end of the period.

A different mode from real-time scoring, which stays causal per transfer: here every transfer
of the period is scored first (its features still causal, from the history before it), then
each account is judged on all of its period's transfers and its counterparties' (the
:class:`~illicitflows.modeling.accounts.AccountRanker` of the detector). Nothing at or after
the period's end is read.

``train transactions`` fits the ranker on the validation period's accounts (their transfers'
scores come from a model that never trained on them, as in the service) and reports its ranking
of the test period's accounts as ``test.account_pr_auc``, for the detector and for the peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from illicitflows.explain.reasons import explain
from illicitflows.modeling.accounts import AccountRanker, PeriodTransfers, account_table
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.metrics import account_labels_from_transactions, ranking_metrics
from illicitflows.transactions.schema import ID, LABEL, USD_PER_UNIT, usd_rate

TOP_TRANSFERS = 3  # transfers shown behind each account
#: Plain names of the ranker's feature groups, for an account's drivers.
DRIVERS = {"own": "its own transfers' risk", "hop1": "its counterparties' risk",
           "hop2": "its counterparties' counterparties' risk"}


def account_keys(bank: pd.Series, account: pd.Series) -> np.ndarray:
    return (bank.astype(str) + "|" + account.astype(str)).to_numpy(dtype=object)


def period_transfers(frame: pd.DataFrame, rows: np.ndarray, scores: np.ndarray
                     ) -> PeriodTransfers:
    """The transfers at ``rows`` (positions or a mask) of ``frame`` with their ``scores``
    (aligned with ``frame``); amounts in USD at the built-in rates, the same for any detector."""
    positions = np.flatnonzero(rows) if rows.dtype == bool else rows
    part = frame.iloc[positions]
    return PeriodTransfers(
        senders=account_keys(part["from_bank"], part["from_account"]),
        receivers=account_keys(part["to_bank"], part["to_account"]),
        scores=np.asarray(scores)[positions],
        amounts=part["amount_paid"].to_numpy(dtype=np.float64)
        * usd_rate(part["payment_currency"], USD_PER_UNIT),
        seconds=part["timestamp"].to_numpy(dtype="datetime64[s]").astype(np.int64))


def period_labels(frame: pd.DataFrame, rows: np.ndarray, index: pd.Index,
                  accounts: pd.Series | None) -> np.ndarray:
    """Labels of the accounts in ``index``: the account file's flags when given (AMLSim),
    else whether the account sent or received a laundering transfer in the period."""
    if accounts is None:
        part = frame.iloc[np.flatnonzero(rows)]
        accounts = account_labels_from_transactions(
            account_keys(part["from_bank"], part["from_account"]),
            account_keys(part["to_bank"], part["to_account"]), part[LABEL].to_numpy())
    return accounts.reindex(index).fillna(0).to_numpy(dtype=np.int8)


@dataclass
class AccountReview:
    """A fitted ranker and its test metrics (account PR-AUC over the test period); no ranker
    when the validation period has no flagged account (or only flagged ones)."""

    ranker: AccountRanker | None
    metrics: dict[str, float]


def fit_and_evaluate(frame: pd.DataFrame, splits: np.ndarray, scores: np.ndarray,
                     threshold: float, accounts: pd.Series | None, seed: int) -> AccountReview:
    """Fit the ranker on the validation period's accounts, rank the test period's."""
    valid, test = splits == "valid", splits == "test"
    fit_table = account_table(period_transfers(frame, valid, scores), threshold)
    fit_labels = period_labels(frame, valid, fit_table.index, accounts)
    if len(np.unique(fit_labels)) < 2:  # e.g. no laundering in a short validation period
        return AccountReview(None, {"account_pr_auc": float("nan"), "account_f1": float("nan"),
                                    "accounts_reviewed": 0, "accounts_flagged_true": 0})
    ranker = AccountRanker.fit(fit_table, fit_labels, seed)
    table = account_table(period_transfers(frame, test, scores), threshold)
    truth = period_labels(frame, test, table.index, accounts)
    ranked = ranker.score(table)
    flagged = ranked >= ranker.threshold
    hits = float((flagged & (truth == 1)).sum())
    precision, recall = hits / max(flagged.sum(), 1), hits / max(truth.sum(), 1)
    return AccountReview(ranker, {
        "account_pr_auc": ranking_metrics(truth, ranked)["pr_auc"],
        "account_f1": 2 * precision * recall / (precision + recall) if hits else 0.0,
        "accounts_reviewed": int(len(table)), "accounts_flagged_true": int(truth.sum())})


class ReviewError(ValueError):
    """A review that cannot be made: names the input (``field``: ``from``, ``to``, or
    ``model`` when the model version has no account ranker) and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass
class PeriodReview:
    """A period's review. ``accounts``: one row per account, best first (``rank``, ``bank``,
    ``account``, ``review_score``, ``flagged``, ``network``, ``network_size``, ``families``
    and ``drivers`` as lists, ``transfers``: the transfers behind them as dicts,
    ``period_transfers``); ``networks``: size of each network; ``transfers_read``: the
    transfers read up to the period's end (history included)."""

    accounts: pd.DataFrame
    networks: dict[str, int]
    transfers_read: int
    start: pd.Timestamp
    end: pd.Timestamp

    def table(self) -> pd.DataFrame:
        """One flat row per account (lists joined, transfers described), as files hold it."""
        flat = self.accounts.assign(
            families=[", ".join(f) for f in self.accounts["families"]],
            drivers=[", ".join(d) for d in self.accounts["drivers"]],
            transfers=["; ".join(map(describe_transfer, shown))
                       for shown in self.accounts["transfers"]])
        return flat.assign(period_start=str(self.start), period_end=str(self.end))


def review_accounts(detector: Detector, frame: pd.DataFrame, start: pd.Timestamp,
                    end: pd.Timestamp, top: int | None = None) -> pd.DataFrame:
    """:func:`review_period`'s accounts as one flat row each (what ``illicitflows review``
    writes)."""
    return review_period(detector, frame, start, end, top).table()


def review_period(detector: Detector, frame: pd.DataFrame, start: pd.Timestamp,
                  end: pd.Timestamp, top: int | None = None) -> PeriodReview:
    """Rank the accounts active in ``[start, end)`` of ``frame`` (validated canonical
    transactions; rows from ``end`` on are ignored, earlier ones are the history): one row per
    account, best first, with its review score, flag, network, red-flag families, drivers and
    the transfers behind them. ``top`` keeps the first accounts only. The one review code of
    the command line and the service."""
    if detector.account_ranker is None:
        raise ReviewError("model", "this model version has no account ranker (trained before "
                                   "the account review existed); retrain it with train "
                                   "transactions")
    if end <= start:
        raise ReviewError("to", f"the review period is empty: from {start} is not before "
                                f"to {end}")
    stamps = frame["timestamp"]
    known = frame[(stamps < end).to_numpy()]
    in_period = (known["timestamp"] >= start).to_numpy()
    if not in_period.any():
        raise ReviewError("from", f"no transfers in the review period [{start}, {end})")
    features = detector.features(known)
    scores = detector.score_features(features)
    period = period_transfers(known, in_period, scores)
    table = account_table(period, detector.threshold)
    ranked = detector.account_ranker.score(table)
    order = np.argsort(-ranked, kind="stable")
    if top is not None:
        order = order[:top]
    table, ranked = table.iloc[order], ranked[order]
    flagged = ranked >= detector.account_ranker.threshold
    rows = np.flatnonzero(in_period)
    behind = _top_transfers(period, rows, table.index)
    reasons = _transfer_families(detector, features, behind)
    networks, sizes = _networks(period, table.index[flagged])
    keys = table.index.to_series().str.split("|", n=1, expand=True)
    accounts = pd.DataFrame({
        "rank": np.arange(1, len(table) + 1),
        "bank": keys[0].to_numpy(), "account": keys[1].to_numpy(),
        "review_score": ranked, "flagged": flagged,
        "network": [networks.get(a, "") for a in table.index],
        "network_size": [sizes.get(networks.get(a, ""), 0) for a in table.index],
        "families": [list(reasons.get(a, ())) for a in table.index],
        "drivers": _drivers(detector.account_ranker, table),
        "transfers": [_transfers(known, scores, behind.get(a, ())) for a in table.index],
        "period_transfers": table["own_transfers"].to_numpy(dtype=np.int64),
    })
    return PeriodReview(accounts, sizes, len(known), start, end)


def _top_transfers(period: PeriodTransfers, rows: np.ndarray,
                   accounts: pd.Index) -> dict[str, list[int]]:
    """Each account's highest-scored transfers of the period (positions in the known frame)."""
    both = pd.DataFrame({"account": np.concatenate([period.senders, period.receivers]),
                         "row": np.concatenate([rows, rows]),
                         "score": np.concatenate([period.scores, period.scores])})
    both = both[both["account"].isin(accounts)].sort_values(["account", "score"],
                                                            ascending=[True, False])
    top = both.groupby("account", sort=False).head(TOP_TRANSFERS)
    return top.groupby("account", sort=False)["row"].agg(list).to_dict()


def _transfer_families(detector: Detector, features: pd.DataFrame,
                       behind: dict[str, list[int]]) -> dict[str, list[str]]:
    """Red-flag families behind each account's top transfers, strongest first (TreeSHAP of the
    transaction model, summed over the transfers)."""
    rows = sorted({row for shown in behind.values() for row in shown})
    if not rows:
        return {}
    explained = dict(zip(rows, explain(detector, features.iloc[rows]), strict=True))
    out = {}
    for account, shown in behind.items():
        weight: dict[str, float] = {}
        for row in shown:
            for reason in explained[row].reasons:
                if reason.contribution > 0:
                    weight[reason.family] = weight.get(reason.family, 0.0) + reason.contribution
        out[account] = sorted(weight, key=weight.get, reverse=True)
    return out


def _drivers(ranker: AccountRanker, table: pd.DataFrame) -> list[list[str]]:
    """What raised each account's review score: own transfers, counterparties, two hops."""
    if table.empty:
        return []
    contributions = ranker.contributions(table)[:, :-1]
    groups = np.array([name.split("_", 1)[0] for name in table.columns])
    out = []
    for row in contributions:
        by_group = {g: float(row[groups == g].sum()) for g in DRIVERS}
        out.append([DRIVERS[g] for g in sorted(by_group, key=by_group.get, reverse=True)
                    if by_group[g] > 0])
    return out


def _networks(period: PeriodTransfers, flagged: pd.Index) -> tuple[dict[str, str], dict[str, int]]:
    """Groups of two or more flagged accounts linked by transfers of the period between flagged
    accounts: network id (``N1`` for the group of the best-ranked account, ...) and size."""
    if flagged.empty:
        return {}, {}
    position = pd.Series(np.arange(len(flagged)), index=flagged)
    src = position.reindex(period.senders).to_numpy()
    dst = position.reindex(period.receivers).to_numpy()
    keep = ~(np.isnan(src) | np.isnan(dst))
    n = len(flagged)
    graph = coo_matrix((np.ones(int(keep.sum())), (src[keep].astype(int), dst[keep].astype(int))),
                       shape=(n, n))
    _, component = connected_components(graph, directed=False)
    size = np.bincount(component)
    first_seen: dict[int, str] = {}
    for c in component:  # flagged is in rank order: networks numbered by their best account
        if size[c] > 1:
            first_seen.setdefault(int(c), f"N{len(first_seen) + 1}")
    names = {account: first_seen[int(c)] for account, c in zip(flagged, component, strict=True)
             if int(c) in first_seen}
    return names, {first_seen[int(c)]: int(size[c]) for c in first_seen}


def _transfers(frame: pd.DataFrame, scores: np.ndarray,
               rows: list[int] | tuple) -> list[dict[str, Any]]:
    """The transfers at ``rows`` of ``frame``: id (when the records have one), time, accounts,
    amount paid, currency and risk score."""
    ids = frame[ID] if ID in frame.columns else None
    out = []
    for row in rows:
        r = frame.iloc[row]
        record_id = None if ids is None or pd.isna(ids.iloc[row]) else str(ids.iloc[row])
        out.append({"id": record_id, "timestamp": r["timestamp"],
                    "from": f"{r['from_bank']}|{r['from_account']}",
                    "to": f"{r['to_bank']}|{r['to_account']}",
                    "amount_paid": float(r["amount_paid"]),
                    "payment_currency": r["payment_currency"], "risk": float(scores[row])})
    return out


def describe_transfer(transfer: dict[str, Any]) -> str:
    """``2024-03-01 12:00 A -> B 9,500.00 US Dollar (risk 0.93)``."""
    return (f"{transfer['timestamp']:%Y-%m-%d %H:%M} {transfer['from']} -> {transfer['to']} "
            f"{transfer['amount_paid']:,.2f} {transfer['payment_currency']} "
            f"(risk {transfer['risk']:.2f})")
