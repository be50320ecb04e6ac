"""Account reviews on the record: each review the service answers is an entry hash-chained
beside the decisions and anchored to them (:class:`~illicitflows.audit.anchored.AnchoredChain`,
as dispositions are).

An entry holds who asked (key id and role), when, the detector, the model name and version that
ranked, the period and ``top`` asked for, how many accounts were returned, the result itself
(canonical JSON) and its SHA-256. ``audit verify`` walks the entries after the dispositions: an
edited, deleted or inserted entry, a result that no longer matches its hash, or a decision chain
rewritten under an entry is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from illicitflows.audit.anchored import AnchoredChain, chain_table, head_table
from illicitflows.audit.canonical import canonical_json, sha256_hex
from illicitflows.audit.models import VerifyReport
from illicitflows.db import make_engine, write_transaction
from illicitflows.ids import uuid7_texts

metadata = sa.MetaData()
reviews = chain_table(
    "audit_reviews", metadata,
    sa.Column("review_id", sa.String(36), nullable=False, unique=True),
    sa.Column("key_id", sa.String),
    sa.Column("role", sa.String(16)),
    sa.Column("detector", sa.String(16), nullable=False),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("period_from", sa.String(40), nullable=False),
    sa.Column("period_to", sa.String(40), nullable=False),
    sa.Column("top", sa.Integer, nullable=False),
    sa.Column("accounts", sa.Integer, nullable=False),
    sa.Column("result_sha256", sa.String(64), nullable=False),
    sa.Column("result", sa.Text, nullable=False),
)
review_head = head_table("audit_review_head", metadata)
#: Reviews as a chain anchored to the decisions (hashed: every column but the link and hash).
CHAIN = AnchoredChain(reviews, review_head, "review")


@dataclass(frozen=True)
class ReviewAsked:
    """What was reviewed, by whom: an entry's fields besides its result and chain."""

    key_id: str | None
    role: str | None
    detector: str
    model_name: str
    model_version: str
    period_from: str
    period_to: str
    top: int


@dataclass(frozen=True)
class ReviewEntry(ReviewAsked):
    """One logged account review."""

    seq: int
    review_id: str
    anchor_seq: int
    anchor_hash: str
    created_at: str
    accounts: int
    result_sha256: str
    result: str
    prev_hash: str
    row_hash: str


class ReviewLog:
    """Account reviews in the audit database (the same URL as the decision log)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        with write_transaction(self.engine) as connection:
            CHAIN.create(connection)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, asked: ReviewAsked, result: Mapping[str, Any], accounts: int,
               at: datetime | None = None) -> ReviewEntry:
        """Append a review with its result (any JSON-able mapping), committed durably before
        this returns."""
        text = canonical_json(result)
        with write_transaction(self.engine) as connection:
            row = CHAIN.append(connection, {
                "review_id": uuid7_texts(1)[0], **asdict(asked), "accounts": accounts,
                "result_sha256": sha256_hex(text), "result": text}, at)
        return ReviewEntry(**row)

    def get(self, review_id: str) -> ReviewEntry | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(reviews).where(
                reviews.c.review_id == review_id)).mappings().one_or_none()
        return None if row is None else ReviewEntry(**row)

    def verify(self, page_size: int = 5000) -> VerifyReport:
        """Walk the reviews in order; name the first edited, inserted or deleted one, one whose
        result no longer matches its hash, or one whose anchor no longer matches."""
        return CHAIN.verify(self.engine, _described, _result_check, page_size=page_size)


def _described(row: Mapping[str, Any]) -> str:
    return (f"review {row['review_id']} ({row['model_name']} v{row['model_version']}, "
            f"[{row['period_from']}, {row['period_to']}))")


def _result_check(_: Connection, page: list[Any]) -> Callable[[Mapping[str, Any]], str | None]:
    def problem(row: Mapping[str, Any]) -> str | None:
        if sha256_hex(row["result"]) != row["result_sha256"]:
            return "result_sha256 does not match the stored result (result edited)"
        return None

    return problem
