"""Append-only entries hash-chained beside the decision log and anchored to it: what analysts
and auditors do with decisions (dispositions, account reviews) goes on the record the way
decisions do.

An :class:`AnchoredChain` is a table of entries linked to each other as decisions are
(``seq``, ``prev_hash``, ``row_hash``; a one-row head table that is also the write lock) and
tied to the decision chain by its head at the moment each entry was written (``anchor_seq``,
``anchor_hash``). Editing, deleting or inserting an entry breaks its link or hash; rewriting the
decision chain under an entry breaks its anchor. :meth:`AnchoredChain.verify` walks the entries
in order and names the first bad one; each kind of entry adds its own checks (a disposition:
the decision it is about; a review: its stored result).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from illicitflows.audit.canonical import dumps
from illicitflows.audit.chain import GENESIS_HASH
from illicitflows.audit.models import VerifyReport
from illicitflows.audit.schema import HEAD_ID, chain_head, decisions

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: What an entry-specific check gets for a page of rows: a function naming a row's problem.
PageCheck = Callable[[Connection, list[Any]], Callable[[Mapping[str, Any]], str | None]]


def chain_table(name: str, metadata: sa.MetaData, *own: sa.Column | sa.Index) -> sa.Table:
    """A chain's table: position, anchor and time, then the entry's ``own`` columns (and
    indexes), then the link and the hash."""
    return sa.Table(name, metadata,
                    sa.Column("seq", POSITION, primary_key=True, autoincrement=False),
                    sa.Column("anchor_seq", sa.BigInteger, nullable=False),
                    sa.Column("anchor_hash", sa.String(64), nullable=False),
                    sa.Column("created_at", sa.String(32), nullable=False),
                    *own,
                    sa.Column("prev_hash", sa.String(64), nullable=False),
                    sa.Column("row_hash", sa.String(64), nullable=False))


def head_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """The one-row head of a chain: its last position and hash (and its write lock)."""
    return sa.Table(name, metadata,
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("seq", sa.BigInteger, nullable=False),
                    sa.Column("row_hash", sa.String(64), nullable=False))


def utc_now_text(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


class AnchoredChain:
    """One kind of entry (``noun``) chained in ``table`` (head ``head``); ``hashed`` names
    the fields of its hash: every column but ``prev_hash`` and ``row_hash``."""

    def __init__(self, table: sa.Table, head: sa.Table, noun: str) -> None:
        self.table, self.head, self.noun = table, head, noun
        self.hashed = tuple(c.name for c in table.columns if c.name not in ("prev_hash",
                                                                             "row_hash"))
        self._head = sa.select(head.c.seq, head.c.row_hash).where(head.c.id == HEAD_ID)

    def create(self, connection: Connection) -> None:
        """The tables, and the head at the genesis (once)."""
        self.table.metadata.create_all(connection, tables=[self.table, self.head])
        if connection.scalar(self._head) is None:
            connection.execute(self.head.insert().values(id=HEAD_ID, seq=0,
                                                         row_hash=GENESIS_HASH))

    def entry_hash(self, prev_hash: str, row: Mapping[str, Any]) -> str:
        """``sha256(prev_hash + canonical JSON of the hashed fields of row)``, hex."""
        body = dumps({name: row[name] for name in self.hashed})
        return hashlib.sha256((prev_hash + body).encode()).hexdigest()

    def append(self, connection: Connection, fields: Mapping[str, Any],
               at: datetime | None = None) -> dict[str, Any]:
        """Append an entry of ``fields`` (its own columns) in the caller's write transaction,
        anchored at the decision chain's head; returns the row as stored."""
        anchor = connection.execute(sa.select(chain_head.c.seq, chain_head.c.row_hash)
                                    .where(chain_head.c.id == HEAD_ID)).one()
        head = connection.execute(self._head.with_for_update()).one()
        row = {"seq": head.seq + 1, **fields, "anchor_seq": anchor.seq,
               "anchor_hash": anchor.row_hash, "created_at": utc_now_text(at),
               "prev_hash": head.row_hash}
        row["row_hash"] = self.entry_hash(head.row_hash, row)
        connection.execute(self.table.insert().values(**row))
        connection.execute(self.head.update().where(self.head.c.id == HEAD_ID).values(
            seq=row["seq"], row_hash=row["row_hash"]))
        return row

    def verify(self, engine: Engine, describe: Callable[[Mapping[str, Any]], str],
               check: PageCheck | None = None, decision_of: str | None = None,
               page_size: int = 5000) -> VerifyReport:
        """Walk the entries in order; name the first edited, inserted or deleted one, one
        whose anchor in the decision chain no longer matches, or one ``check`` finds wrong
        (``describe`` names an entry; ``decision_of`` is the column naming its decision)."""
        walker = _Walker(self)
        with engine.connect() as connection:
            head = connection.execute(self._head).one()
            after = 0
            while page := connection.execute(
                    sa.select(self.table).where(self.table.c.seq > after)
                    .order_by(self.table.c.seq).limit(page_size)).mappings().all():
                anchors = _anchor_hashes(connection, page)
                own = check(connection, page) if check else (lambda _: None)
                for row in page:
                    problem = walker.problem(row, anchors) or own(row)
                    if problem:
                        return walker.report(row["seq"], row[decision_of] if decision_of
                                             else None, f"{describe(row)}: {problem}")
                    walker.passed(row)
                after = page[-1]["seq"]
        if walker.checked != head.seq or walker.last_hash != head.row_hash:
            return walker.report(walker.checked + 1, None,
                                 f"{self.noun} head records {head.seq} {self.noun}(s) but the "
                                 f"chain of {self.noun}s ends at {walker.checked} ({self.noun}s "
                                 "deleted from the end, or the head rewritten?)")
        return walker.report(None, None, "")


def _anchor_hashes(connection: Connection, page: list[Any]) -> dict[int, str]:
    """The current ``row_hash`` of each decision chain position the page is anchored at."""
    seqs = {row["anchor_seq"] for row in page}
    return {row.seq: row.row_hash for row in connection.execute(
        sa.select(decisions.c.seq, decisions.c.row_hash).where(decisions.c.seq.in_(seqs)))}


class _Walker:
    """Checks a chain's rows handed over in order, starting at the genesis."""

    def __init__(self, chain: AnchoredChain) -> None:
        self.chain = chain
        self.checked, self.last_hash = 0, GENESIS_HASH

    def problem(self, row: Mapping[str, Any], anchors: Mapping[int, str]) -> str | None:
        expected = self.checked + 1
        if row["seq"] != expected:
            return f"position gap: expected {expected}, found {row['seq']} (deleted?)"
        if row["prev_hash"] != self.last_hash:
            return (f"broken link: prev_hash does not match the previous {self.chain.noun} "
                    "(inserted, deleted or the previous one rewritten)")
        if self.chain.entry_hash(row["prev_hash"], row) != row["row_hash"]:
            return f"row_hash does not match its contents ({self.chain.noun} changed)"
        if row["anchor_seq"] and anchors.get(row["anchor_seq"]) != row["anchor_hash"]:
            return (f"its anchor, decision chain position {row['anchor_seq']}, is missing or "
                    "changed (decision chain rewritten?)")
        return None

    def passed(self, row: Mapping[str, Any]) -> None:
        self.checked, self.last_hash = row["seq"], row["row_hash"]

    def report(self, seq: int | None, decision_id: str | None, problem: str) -> VerifyReport:
        return VerifyReport(ok=not problem, checked=self.checked, first_bad_seq=seq,
                            first_bad_decision_id=decision_id, problem=problem,
                            head_hash=self.last_hash)
