"""Analysts' dispositions of decisions (confirmed, dismissed, escalated), append-only and
hash-chained into the decision log.

A disposition row holds who (key id and role), when, the status and the note, the decision it
is about with that decision's ``row_hash``, and the decision chain's head at the moment it was
recorded (``anchor_seq``, ``anchor_hash``): an :class:`~illicitflows.audit.anchored.AnchoredChain`
(linked like decisions, anchored to them), whose verification here also checks the decision
each disposition quotes. :meth:`DispositionLog.verify` walks them after the decisions and names
the first bad disposition, its position and its decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from illicitflows.audit.anchored import AnchoredChain, chain_table, head_table
from illicitflows.audit.models import VerifyReport
from illicitflows.audit.schema import decisions, requests
from illicitflows.db import make_engine, write_transaction
from illicitflows.ids import uuid7_texts

Status = Literal["confirmed", "dismissed", "escalated"]
STATUSES = frozenset(get_args(Status))
#: The label a disposition gives its decision's record in training data (escalated: none yet).
LABELS: dict[str, int] = {"confirmed": 1, "dismissed": 0}
MAX_NOTE = 4000

metadata = sa.MetaData()
dispositions = chain_table(
    "audit_dispositions", metadata,
    sa.Column("disposition_id", sa.String(36), nullable=False, unique=True),
    sa.Column("decision_id", sa.String(36), nullable=False),
    sa.Column("decision_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String),
    sa.Column("role", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    #: A decision's history, and its latest status, by index.
    sa.Index("ix_audit_dispositions_decision_seq", "decision_id", "seq"),
)
disposition_head = head_table("audit_disposition_head", metadata)
#: Dispositions as a chain anchored to the decisions (hashed: every column but the link and
#: the hash).
CHAIN = AnchoredChain(dispositions, disposition_head, "disposition")
#: The alerts (flagged decisions) by position and score: a partial index, so only flagged
#: decisions add an entry when logged, and the review queue reads, counts and pages its
#: alerts from it instead of scanning every decision (100,000 decisions: the whole table).
FLAGGED = decisions.c.flagged.is_(True)
ALERTS_INDEX = sa.Index("ix_audit_decisions_alerts", decisions.c.seq, decisions.c.score,
                        sqlite_where=FLAGGED, postgresql_where=FLAGGED)


class DispositionError(ValueError):
    """A disposition that cannot be recorded: names the field and why."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.status = field, reason, status


@dataclass(frozen=True, slots=True)
class Disposition:
    """One recorded disposition of a decision."""

    seq: int
    disposition_id: str
    decision_id: str
    decision_hash: str
    anchor_seq: int
    anchor_hash: str
    created_at: str
    key_id: str | None
    role: str | None
    status: str
    note: str
    prev_hash: str
    row_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_input(status: Any, note: Any) -> tuple[str, str]:
    """The status and stripped note of a disposition request, or :class:`DispositionError`."""
    if status not in STATUSES:
        raise DispositionError("status", f"must be one of {sorted(STATUSES)}, got {status!r}")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise DispositionError("note", "must be text")
    if len(note) > MAX_NOTE:
        raise DispositionError("note", f"{len(note):,} characters exceed {MAX_NOTE:,}")
    return status, note.strip()


class DispositionLog:
    """Dispositions in the audit database (the same URL as the decision log)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        with write_transaction(self.engine) as connection:
            CHAIN.create(connection)
            ALERTS_INDEX.create(connection, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, decision_id: str, status: Any, note: Any, key_id: str | None,
               role: str | None, at: datetime | None = None) -> Disposition:
        """Append a disposition of a logged decision, committed; raises
        :class:`DispositionError` (status 404 for an unknown decision, 422 for bad input)."""
        status, note = check_input(status, note)
        with write_transaction(self.engine) as connection:
            decision_hash = connection.scalar(sa.select(decisions.c.row_hash).where(
                decisions.c.decision_id == decision_id))
            if decision_hash is None:
                raise DispositionError("decision_id", f"no decision {decision_id!r}", 404)
            row = CHAIN.append(connection, {
                "disposition_id": uuid7_texts(1)[0], "decision_id": decision_id,
                "decision_hash": decision_hash, "key_id": key_id, "role": role,
                "status": status, "note": note}, at)
        return Disposition(**row)

    def history(self, decision_id: str) -> list[Disposition]:
        """A decision's dispositions, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(dispositions).where(
                dispositions.c.decision_id == decision_id).order_by(dispositions.c.seq))
            return [Disposition(**row) for row in rows.mappings()]

    def latest(self, decision_ids: Iterable[str]) -> dict[str, Disposition]:
        """The latest disposition of each of these decisions that has one."""
        ids = list(dict.fromkeys(decision_ids))
        found: dict[str, Disposition] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                rows = connection.execute(sa.select(dispositions).where(
                    dispositions.c.decision_id.in_(ids[start:start + 500]))
                    .order_by(dispositions.c.seq))
                found.update((row["decision_id"], Disposition(**row)) for row in rows.mappings())
        return found

    def all_latest(self, detector: str | None = None) -> list[Disposition]:
        """The latest disposition of every dispositioned decision (of ``detector``), in the
        order they were recorded."""
        latest = sa.select(sa.func.max(dispositions.c.seq)).group_by(dispositions.c.decision_id)
        query = sa.select(dispositions).where(dispositions.c.seq.in_(latest))
        with self.engine.connect() as connection:
            rows = [Disposition(**row) for row in connection.execute(
                query.order_by(dispositions.c.seq)).mappings()]
        if detector is None:
            return rows
        with self.engine.connect() as connection:
            of_detector = set(connection.scalars(
                sa.select(decisions.c.decision_id)
                .select_from(decisions.join(requests,
                                            decisions.c.request_seq == requests.c.first_seq))
                .where(requests.c.detector == detector,
                       decisions.c.decision_id.in_([d.decision_id for d in rows]))))
        return [d for d in rows if d.decision_id in of_detector]

    def verify(self, page_size: int = 5000) -> VerifyReport:
        """Walk the dispositions in order; name the first edited, inserted or deleted one, or
        one whose decision or anchor in the decision chain no longer matches."""
        return CHAIN.verify(self.engine, _described, _decision_check, "decision_id", page_size)


def _described(row: Mapping[str, Any]) -> str:
    return f"disposition {row['disposition_id']} of decision {row['decision_id']}"


def _decision_check(connection: Connection,
                    page: list[Any]) -> Callable[[Mapping[str, Any]], str | None]:
    """For a page of dispositions: whether the decision each one is about still has the hash
    it quoted."""
    current = dict(connection.execute(sa.select(decisions.c.decision_id, decisions.c.row_hash)
                                      .where(decisions.c.decision_id.in_(
                                          {row["decision_id"] for row in page}))).all())

    def problem(row: Mapping[str, Any]) -> str | None:
        if current.get(row["decision_id"]) != row["decision_hash"]:
            return "the decision it was recorded for is missing or changed"
        return None

    return problem
