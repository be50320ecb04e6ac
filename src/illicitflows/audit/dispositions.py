"""Analysts' dispositions of decisions (confirmed, dismissed, escalated), append-only and
hash-chained into the decision log.

A disposition row holds who (key id and role), when, the status and the note, the decision it
is about with that decision's ``row_hash``, and the decision chain's head at the moment it was
recorded (``anchor_seq``, ``anchor_hash``). Dispositions are linked to each other the way
decisions are (``prev_hash``, ``row_hash``, a head row that is also the write lock), and each
one is tied to the decision chain by the two hashes it quotes: editing, deleting or inserting a
disposition breaks its link or hash, and rewriting the decision chain under a disposition
breaks its anchor. :meth:`DispositionLog.verify` walks them after the decisions and names the
first bad disposition, its position and its decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from illicitflows.audit.canonical import dumps
from illicitflows.audit.chain import GENESIS_HASH
from illicitflows.audit.models import VerifyReport
from illicitflows.audit.schema import HEAD_ID, chain_head, decisions, requests
from illicitflows.db import make_engine, write_transaction
from illicitflows.ids import uuid7_texts

Status = Literal["confirmed", "dismissed", "escalated"]
STATUSES = frozenset(get_args(Status))
#: The label a disposition gives its decision's record in training data (escalated: none yet).
LABELS: dict[str, int] = {"confirmed": 1, "dismissed": 0}
MAX_NOTE = 4000
#: Every column but ``prev_hash`` and ``row_hash``.
HASHED_FIELDS = ("seq", "disposition_id", "decision_id", "decision_hash", "anchor_seq",
                 "anchor_hash", "created_at", "key_id", "role", "status", "note")

metadata = sa.MetaData()
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
dispositions = sa.Table(
    "audit_dispositions", metadata,
    sa.Column("seq", _POSITION, primary_key=True, autoincrement=False),
    sa.Column("disposition_id", sa.String(36), nullable=False, unique=True),
    sa.Column("decision_id", sa.String(36), nullable=False),
    sa.Column("decision_hash", sa.String(64), nullable=False),
    sa.Column("anchor_seq", sa.BigInteger, nullable=False),
    sa.Column("anchor_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("key_id", sa.String),
    sa.Column("role", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    #: A decision's history, and its latest status, by index.
    sa.Index("ix_audit_dispositions_decision_seq", "decision_id", "seq"),
)
disposition_head = sa.Table(
    "audit_disposition_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)
_HEAD = sa.select(disposition_head.c.seq, disposition_head.c.row_hash).where(
    disposition_head.c.id == HEAD_ID)
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


def disposition_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the hashed fields of row)``, hex."""
    body = dumps({name: row[name] for name in HASHED_FIELDS})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


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
            metadata.create_all(connection)
            ALERTS_INDEX.create(connection, checkfirst=True)
            if connection.scalar(_HEAD) is None:
                connection.execute(disposition_head.insert().values(
                    id=HEAD_ID, seq=0, row_hash=GENESIS_HASH))

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
            anchor = connection.execute(sa.select(chain_head.c.seq, chain_head.c.row_hash)
                                        .where(chain_head.c.id == HEAD_ID)).one()
            head = connection.execute(_HEAD.with_for_update()).one()
            row = {"seq": head.seq + 1, "disposition_id": uuid7_texts(1)[0],
                   "decision_id": decision_id, "decision_hash": decision_hash,
                   "anchor_seq": anchor.seq, "anchor_hash": anchor.row_hash,
                   "created_at": (at or datetime.now(UTC)).astimezone(UTC).isoformat(
                       timespec="microseconds"),
                   "key_id": key_id, "role": role, "status": status, "note": note,
                   "prev_hash": head.row_hash}
            row["row_hash"] = disposition_hash(head.row_hash, row)
            connection.execute(dispositions.insert().values(**row))
            connection.execute(disposition_head.update().where(
                disposition_head.c.id == HEAD_ID).values(seq=row["seq"],
                                                         row_hash=row["row_hash"]))
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
        walker = _Walker()
        with self.engine.connect() as connection:
            head = connection.execute(_HEAD).one()
            after = 0
            while page := connection.execute(
                    sa.select(dispositions).where(dispositions.c.seq > after)
                    .order_by(dispositions.c.seq).limit(page_size)).mappings().all():
                hashes = _decision_hashes(connection, page)
                for row in page:
                    problem = walker.problem(row, hashes)
                    if problem:
                        return walker.report(row["seq"], row["decision_id"],
                                             f"disposition {row['disposition_id']} of decision "
                                             f"{row['decision_id']}: {problem}")
                after = page[-1]["seq"]
        if walker.checked != head.seq or walker.last_hash != head.row_hash:
            return walker.report(walker.checked + 1, None,
                                 f"disposition head records {head.seq} disposition(s) but the "
                                 f"chain of dispositions ends at {walker.checked} (dispositions "
                                 "deleted from the end, or the head rewritten?)")
        return walker.report(None, None, "")


def _decision_hashes(connection: Connection,
                     page: list[Any]) -> dict[tuple[str, str], str]:
    """For the dispositions of a page: the current ``row_hash`` of each decision they are
    about, and of each decision chain position they are anchored at."""
    ids = {row["decision_id"] for row in page}
    seqs = {row["anchor_seq"] for row in page}
    found: dict[tuple[str, str], str] = {}
    for row in connection.execute(sa.select(decisions.c.seq, decisions.c.decision_id,
                                            decisions.c.row_hash)
                                  .where(decisions.c.decision_id.in_(ids))):
        found[("hash", row.decision_id)] = row.row_hash
    for row in connection.execute(sa.select(decisions.c.seq, decisions.c.row_hash)
                                  .where(decisions.c.seq.in_(seqs))):
        found[("anchor", str(row.seq))] = row.row_hash
    return found


class _Walker:
    """Checks disposition rows handed over in order, starting at the genesis."""

    def __init__(self) -> None:
        self.checked, self.last_hash = 0, GENESIS_HASH

    def problem(self, row: Mapping[str, Any], found: Mapping[tuple[str, str], Any]) -> str | None:
        expected = self.checked + 1
        if row["seq"] != expected:
            return f"position gap: expected {expected}, found {row['seq']} (deleted?)"
        if row["prev_hash"] != self.last_hash:
            return ("broken link: prev_hash does not match the previous disposition "
                    "(inserted, deleted or the previous one rewritten)")
        if disposition_hash(row["prev_hash"], row) != row["row_hash"]:
            return "row_hash does not match its contents (disposition changed)"
        if found.get(("hash", row["decision_id"])) != row["decision_hash"]:
            return "the decision it was recorded for is missing or changed"
        if row["anchor_seq"] and found.get(("anchor", str(row["anchor_seq"]))) != \
                row["anchor_hash"]:
            return (f"its anchor, decision chain position {row['anchor_seq']}, is missing or "
                    "changed (decision chain rewritten?)")
        self.checked, self.last_hash = expected, row["row_hash"]
        return None

    def report(self, seq: int | None, decision_id: str | None, problem: str) -> VerifyReport:
        return VerifyReport(ok=not problem, checked=self.checked, first_bad_seq=seq,
                            first_bad_decision_id=decision_id, problem=problem,
                            head_hash=self.last_hash)
