"""The retrospective account review of a period of the service's stored transaction history
(``POST /v1/transactions/review``), logged in the audit chain.

The review is the command line's (:func:`illicitflows.jobs.account_review.review_period`): the
same code ranks the accounts, here on the stored history instead of a file. It reads the
transfers stamped in ``[from - feature horizon, to)`` (the history the period's features look
back on, as the scorer's rebuild and an auditor's replay read it) and nothing stamped at or
after ``to``. The answer is logged as a review entry (who, the period, the model name and
version, the result and its hash) chained beside the decisions before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from illicitflows.audit.reviews import ReviewAsked, ReviewLog
from illicitflows.jobs.account_review import PeriodReview, ReviewError, review_period
from illicitflows.serving.engine import TransactionScorer
from illicitflows.serving.history import ROW_COLUMNS
from illicitflows.transactions.schema import TRANSACTION_SCHEMA

FIELDS = ("from", "to", "top")
DEFAULT_TOP = 100
MAX_TOP = 1000


class ReviewInputError(ValueError):
    """A review request that cannot be answered: names the body's field, why, and its value."""

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.value = field, reason, value


class ReviewUnavailableError(RuntimeError):
    """The served model version cannot review accounts (it has no account ranker)."""


@dataclass(frozen=True)
class Period:
    """The period asked for (naive UTC, as record times are) and how many accounts to return."""

    start: pd.Timestamp
    end: pd.Timestamp
    top: int


def period_of(body: Mapping[str, Any]) -> Period:
    """The period of a request body ``{"from": ..., "to": ..., "top": N}``, or
    :class:`ReviewInputError` naming the first bad field (unknown fields are refused)."""
    for name in body:
        if name not in FIELDS:
            raise ReviewInputError(str(name)[:64], "unknown field (the body takes 'from', 'to' "
                                                   "and 'top')")
    start, end = _moment(body, "from"), _moment(body, "to")
    if end <= start:
        raise ReviewInputError("to", f"must be after 'from' ({start.isoformat()})", body["to"])
    top = body.get("top", DEFAULT_TOP)
    if type(top) is not int or not 1 <= top <= MAX_TOP:
        raise ReviewInputError("top", f"must be an integer from 1 to {MAX_TOP}", top)
    return Period(start, end, top)


def _moment(body: Mapping[str, Any], name: str) -> pd.Timestamp:
    """Field ``name``: an ISO-8601 date or time (UTC when it has no offset)."""
    text = body.get(name)
    if not isinstance(text, str):
        raise ReviewInputError(name, "required: an ISO-8601 date or time such as 2024-03-01 or "
                                     "2024-03-01T12:00:00Z", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return pd.Timestamp(parsed)
    except (ValueError, OverflowError) as error:  # not a time; beyond the calendar or pandas
        raise ReviewInputError(name, f"not an ISO-8601 date or time: {error}", text) from error


@dataclass
class StoredReview:
    """A review of the stored history and the history rows it had to skip (each named)."""

    review: PeriodReview
    skipped: list[str]


def review_stored(scorer: TransactionScorer, period: Period, max_transfers: int
                  ) -> StoredReview:
    """Review ``period`` of the transactions ``scorer``'s stored history with its detector
    (:class:`ReviewInputError` for a period it cannot review, :class:`ReviewUnavailableError`
    when the model cannot review accounts)."""
    since, until = (period.start - scorer.horizon).isoformat(), period.end.isoformat()
    held = _stored_count(scorer, since, until)
    if held > max_transfers:
        raise ReviewInputError("from", f"the period and the feature horizon before it hold "
                                       f"{held:,} stored transfers, more than the service "
                                       f"reviews at once ({max_transfers:,}): review a shorter "
                                       "period, or the history offline with 'illicitflows "
                                       "review transactions'", period.start.isoformat())
    stored = scorer.store.load(since=since, until=until)
    if stored.empty:
        raise ReviewInputError("from", f"no stored transfers in [{period.start.isoformat()}, "
                                       f"{period.end.isoformat()})", period.start.isoformat())
    frame, skipped = _records(stored)
    try:
        review = review_period(scorer.detector, frame, period.start, period.end, period.top)
    except ReviewError as error:
        if error.field == "model":
            raise ReviewUnavailableError(f"{scorer.model.name} version {scorer.model.version}: "
                                         f"{error.reason}") from error
        raise ReviewInputError(error.field, error.reason) from error
    return StoredReview(review, skipped)


def _stored_count(scorer: TransactionScorer, since: str, until: str) -> int:
    table = scorer.store.table
    with scorer.store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table).where(
            table.c.event_time >= since, table.c.event_time < until)) or 0)


def _records(stored: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Stored records as validated canonical transactions; rows that no longer validate are
    left out and named (position, field, reason)."""
    raw = stored.drop(columns=list(ROW_COLUMNS))
    absent = [f.name for f in TRANSACTION_SCHEMA.fields if f.name not in raw.columns]
    result = TRANSACTION_SCHEMA.parse(raw.assign(**dict.fromkeys(absent)))
    if not len(result.errors):
        return result.frame, []
    skipped = [f"history row {stored['_seq'].iloc[row]}, field {column}: {reason}"
               for row, column, reason in result.errors[["row", "column", "reason"]]
               .itertuples(index=False)]
    kept = ~np.isin(np.arange(len(result.frame)), result.bad_rows)
    return result.frame[kept], skipped


def review_result(stored: StoredReview) -> dict[str, Any]:
    """The review's answer as plain JSON data: the ranked accounts with their reasons and the
    transfers behind them, the networks, what was read and skipped."""
    review = stored.review
    accounts = []
    for row in review.accounts.to_dict(orient="records"):
        accounts.append({
            "rank": int(row["rank"]), "bank": row["bank"], "account": row["account"],
            "review_score": float(row["review_score"]), "flagged": bool(row["flagged"]),
            "network": row["network"] or None, "network_size": int(row["network_size"]),
            "families": row["families"], "drivers": row["drivers"],
            "transfers": [{**t, "timestamp": t["timestamp"].isoformat()}
                          for t in row["transfers"]],
            "period_transfers": int(row["period_transfers"])})
    members: dict[str, list[str]] = {}
    for account in accounts:
        if account["network"]:
            members.setdefault(account["network"], []).append(
                f"{account['bank']}|{account['account']}")
    return {"accounts": accounts,
            "networks": [{"network": name, "size": size, "accounts": members.get(name, [])}
                         for name, size in review.networks.items()],
            "transfers_read": review.transfers_read, "skipped": stored.skipped}


def review_and_log(scorer: TransactionScorer, reviews: ReviewLog, period: Period,
                   key_id: str | None, role: str | None, max_transfers: int) -> dict[str, Any]:
    """Review ``period`` with ``scorer``'s model, log the review entry (committed before this
    returns) and answer the result with the period, the model and the entry."""
    result = review_result(review_stored(scorer, period, max_transfers))
    model = scorer.model
    entry = reviews.record(ReviewAsked(
        key_id=key_id, role=role, detector=scorer.detector.domain, model_name=model.name,
        model_version=model.version, period_from=period.start.isoformat(),
        period_to=period.end.isoformat(), top=period.top), result, len(result["accounts"]))
    return {"review_id": entry.review_id,
            "period": {"from": entry.period_from, "to": entry.period_to, "top": entry.top},
            "model": {"name": model.name, "version": model.version}, **result,
            "audit": {"seq": entry.seq, "row_hash": entry.row_hash,
                      "result_sha256": entry.result_sha256, "created_at": entry.created_at}}
