"""``AuditLog``: append scoring decisions to a hash chain, read them back, verify the chain."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from illicitflows.audit.canonical import dumps, jsonable, sha256_hex
from illicitflows.audit.chain import ChainWalker, chain_columns, encode_columns
from illicitflows.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash
from illicitflows.audit.models import (
    DecisionBatch,
    DecisionInput,
    Page,
    StoredDecision,
    VerifyReport,
)
from illicitflows.audit.schema import (
    DECISION_FIELDS,
    HEAD_ID,
    REQUEST_FIELDS,
    chain_head,
    create_schema,
    decisions,
    every_row,
    logged,
    requests,
    spans_of,
)
from illicitflows.audit.tree import MerkleTree
from illicitflows.db import insert_columns, make_engine, write_transaction
from illicitflows.ids import uuid7_texts
from illicitflows.settings import database_url

MAX_PAGE_SIZE = 1000
VERIFY_PAGE_SIZE = 5000
#: The chain head and its move, built once (appends run on every scoring request).
_HEAD = sa.select(chain_head.c.seq, chain_head.c.row_hash).where(chain_head.c.id == HEAD_ID)
_LOCK_HEAD = _HEAD.with_for_update()
_MOVE_HEAD = (chain_head.update().where(chain_head.c.id == HEAD_ID)
              .values(seq=sa.bindparam("new_seq"), row_hash=sa.bindparam("new_hash")))


def default_url() -> str:
    """``$ILLICITFLOWS_DATABASE_URL``, else ``sqlite:///<data dir>/audit.db``."""
    return database_url("audit")


def utc_iso(moment: datetime | str) -> str:
    """UTC ISO-8601 with microseconds, the one format ``created_at`` is stored in (naive = UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class AuditLog:
    """Tamper-evident log of scoring decisions in any SQLAlchemy database.

    Appends are serialised by the chain-head row: ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ...
    FOR UPDATE`` elsewhere, so concurrent writers (threads or processes) queue and never fork
    the chain. Reads take no lock.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self._engine = make_engine(self.url)
        create_schema(self._engine)
        #: The Merkle tree over the rows, for signed checkpoints and inclusion proofs.
        self.tree = MerkleTree(self._engine)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def append(self, inputs: Sequence[DecisionInput]) -> list[StoredDecision]:
        """Log a batch of decisions in one committed transaction, in order; returns them stored
        (each run of consecutive decisions sharing every request field is one request)."""
        prepared = [_prepare(decision, new_id)
                    for decision, new_id in zip(inputs, uuid7_texts(len(inputs)), strict=True)]
        if not prepared:
            return []
        columns = self._insert({name: [row[name] for row, _ in prepared]
                                for name in prepared[0][0]}, _runs(prepared))
        return [_stored({name: values[i] for name, values in columns.items()}, plain)
                for i, (_, plain) in enumerate(prepared)]

    def log_batch(self, batch: DecisionBatch, prepared: PreparedRecords | None = None) -> None:
        """Log a request's decisions, given field by field, in one committed transaction, in
        order (the scoring path: the same rows as :meth:`append` of one input per decision).
        ``prepared``: :func:`prepare_records` of the batch's ids and records, done earlier."""
        if not batch.decision_ids:
            return
        if prepared is None:
            prepared = prepare_records(batch.decision_ids, batch.record_texts)
        elif (prepared.decision_ids, prepared.record_texts) != (batch.decision_ids,
                                                                batch.record_texts):
            raise ValueError("prepared records are not the batch's")
        self._insert(_batch_columns(batch, prepared.record_sha256),
                     [(0, len(batch.decision_ids))], prepared.encoded)

    def _insert(self, columns: dict[str, list[Any]], runs: list[tuple[int, int]],
                encoded: dict[str, list[str]] | None = None) -> dict[str, list[Any]]:
        """Number, time and chain the rows of ``columns`` (every field but those, one value per
        row; ``runs``: the row ranges sharing every request field; ``encoded``: some fields'
        JSON texts, computed ahead) after the head, insert them and move the head, in one
        committed transaction; returns the columns with those fields."""
        rows = len(columns["decision_id"])
        with write_transaction(self._engine) as connection:
            head = connection.execute(_LOCK_HEAD).one()
            seqs = list(range(head.seq + 1, head.seq + 1 + rows))
            columns["seq"] = seqs
            columns["created_at"] = [utc_iso(datetime.now(UTC))] * rows
            columns["prev_hash"], columns["row_hash"] = chain_columns(head.row_hash, columns,
                                                                      encoded)
            connection.execute(requests.insert(), [
                {"first_seq": seqs[start], "last_seq": seqs[stop - 1],
                 **{name: columns[name][start] for name in REQUEST_FIELDS}}
                for start, stop in runs])
            request_seqs = [seqs[start] for start, stop in runs for _ in range(stop - start)]
            insert_columns(connection, decisions, {
                "seq": seqs, "request_seq": request_seqs,
                **{name: columns[name] for name in DECISION_FIELDS}})
            connection.execute(_MOVE_HEAD, {"new_seq": head.seq + rows,
                                            "new_hash": columns["row_hash"][-1]})
        return columns

    def get(self, decision_id: str) -> StoredDecision | None:
        """The decision with this id, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(logged.where(decisions.c.decision_id == decision_id)
                                     ).first()
        return None if row is None else _loaded(row._mapping)

    def query(self, from_time: datetime | str | None = None, to_time: datetime | str | None = None,
              flagged: bool | None = None, model_version: str | None = None,
              detector: str | None = None, page: int = 1, page_size: int = 100) -> Page:
        """Decisions in ``[from_time, to_time)`` matching the filters, oldest first, one page."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page must be >= 1 and page_size in 1..{MAX_PAGE_SIZE}")
        of_requests = _request_filters(from_time, to_time, model_version, detector)
        with self._engine.connect() as connection:
            span = _span(connection, of_requests)
            if span is None:
                return Page(items=[], total=0, page=page, page_size=page_size)
            where = [*of_requests, *span]
            if flagged is not None:
                where.append(decisions.c.flagged == flagged)
            total = connection.scalar(sa.select(sa.func.count())
                                      .select_from(logged.where(*where).subquery()))
            rows = connection.execute(logged.where(*where).order_by(decisions.c.seq)
                                      .limit(page_size).offset((page - 1) * page_size))
            items = [_loaded(row) for row in rows.mappings()]
        return Page(items=items, total=total or 0, page=page, page_size=page_size)

    def decisions_before(self, detector: str, seq: int | None = None,
                         limit: int = MAX_PAGE_SIZE) -> list[StoredDecision]:
        """Up to ``limit`` decisions of ``detector`` before position ``seq`` (the latest when
        None), newest first."""
        where = [requests.c.detector == detector]
        if seq is not None:
            where.append(decisions.c.seq < seq)
        with self._engine.connect() as connection:
            low = _first_of_latest(connection, detector, seq, limit)
        if low is None:
            return []
        return self._page([*where, decisions.c.seq >= low], decisions.c.seq.desc(), limit)

    def decisions_after(self, detector: str, seq: int,
                        limit: int = MAX_PAGE_SIZE) -> list[StoredDecision]:
        """Up to ``limit`` decisions of ``detector`` after position ``seq``, oldest first."""
        return self._page([requests.c.detector == detector, decisions.c.seq > seq],
                          decisions.c.seq, limit)

    def _page(self, where: list[sa.ColumnElement[bool]], order: sa.ColumnElement[Any],
              limit: int) -> list[StoredDecision]:
        with self._engine.connect() as connection:
            rows = connection.execute(logged.where(*where).order_by(order).limit(limit))
            return [_loaded(row) for row in rows.mappings()]

    def head(self) -> tuple[int, str]:
        """The chain's head: how many rows it has and the last one's hash."""
        with self._engine.connect() as connection:
            head = connection.execute(_HEAD).one()
        return head.seq, head.row_hash

    def verify(self, page_size: int = VERIFY_PAGE_SIZE,
               anchors: Mapping[int, tuple[str, str]] | None = None) -> VerifyReport:
        """Walk the chain in ``seq`` order, page by page, and name the first bad row.

        Catches edited rows (hash mismatch), deleted rows (seq gap), inserted rows (broken
        link), a cut-off tail (fewer rows than the head records) and rows beyond the head.
        Rows appended while it runs are left for the next run. ``anchors`` (position -> the
        Merkle tree hash of the rows up to there, hex, and who vouches for it: signed
        checkpoints) must all hold, which catches a chain rewritten with every hash
        recomputed.
        """
        anchors = anchors or {}
        with self._engine.connect() as connection:
            head = connection.execute(_HEAD).one()
        walker = ChainWalker()
        beyond = [seq for seq in anchors if seq > head.seq]
        if beyond:
            return _bad(walker, head.seq, None,
                        f"{anchors[max(beyond)][1]} vouches for {max(beyond)} rows but the "
                        f"chain has {head.seq} (rows deleted or the log replaced?)")
        if 0 in anchors and anchors[0][0] != EMPTY_ROOT.hex():
            return _bad(walker, 0, None, f"{anchors[0][1]} signs another empty log")
        tree = Frontier()
        for row in self._rows(head.seq, page_size):
            problem = walker.problem(row)
            if not problem and anchors:
                tree.add(leaf_hash(row["row_hash"]))
                problem = _off_anchor(anchors, tree, row["seq"])
            if problem:
                return _bad(walker, row["seq"], row["decision_id"], problem)
        if walker.checked < head.seq:
            return _bad(walker, walker.checked + 1, None,
                        f"chain head records {head.seq} rows but the chain ends at seq "
                        f"{walker.checked} (rows deleted from the end?)")
        if walker.last_hash != head.row_hash:
            return _bad(walker, head.seq, walker.last_decision_id,
                        "last row's row_hash does not match the chain head (chain rewritten?)")
        untiled = self._untiled(head.seq, page_size)
        if untiled is not None:
            return _bad(walker, *untiled)
        extra = self._first_row_beyond_head()
        if extra is not None:
            return _bad(walker, extra.seq, extra.decision_id,
                        "row beyond the chain head (appended outside the audit log?)")
        return VerifyReport(ok=True, checked=walker.checked, first_bad_seq=None,
                            first_bad_decision_id=None, problem="", head_hash=walker.last_hash,
                            anchors=len(anchors))

    def _untiled(self, last_seq: int, page_size: int) -> tuple[int, None, str] | None:
        """Where the request rows stop covering positions 1 to ``last_seq`` exactly once, in
        order (a request row widened, added, or beyond the head): the first such position, no
        decision id and the problem; None when they tile the log."""
        expected, after = 1, 0
        with self._engine.connect() as connection:
            while page := connection.execute(
                    sa.select(requests.c.first_seq, requests.c.last_seq)
                    .where(requests.c.first_seq > after)
                    .order_by(requests.c.first_seq).limit(page_size)).all():
                connection.rollback()  # end the read transaction between pages
                for first, last in page:
                    if first > last_seq and expected == last_seq + 1:
                        if last <= connection.execute(_HEAD).one().seq:
                            return None  # appended since the walk began: the next run's
                        return first, None, "request row beyond the chain head"
                    if first != expected or not first <= last <= last_seq:
                        return (min(first, expected), None,
                                f"request rows do not tile the log: a request spans seq "
                                f"{first} to {last} where one should start at seq {expected} "
                                "(request row widened or added?)")
                    expected = last + 1
                after = page[-1].first_seq
        if expected != last_seq + 1:
            return expected, None, f"no request row spans seq {expected}"
        return None

    def _rows(self, last_seq: int, page_size: int) -> Iterator[RowMapping]:
        """Rows with seq <= last_seq in seq order, one short read per page (keyset paging)."""
        after = 0
        with self._engine.connect() as connection:
            while True:
                page = connection.execute(
                    every_row.where(decisions.c.seq > after, decisions.c.seq <= last_seq)
                    .order_by(decisions.c.seq).limit(page_size)).mappings().all()
                connection.rollback()  # end the read transaction between pages
                if not page:
                    return
                yield from page
                after = page[-1]["seq"]

    def _first_row_beyond_head(self) -> sa.Row[Any] | None:
        with self._engine.connect() as connection:
            return connection.execute(
                sa.select(decisions.c.seq, decisions.c.decision_id)
                .where(decisions.c.seq > sa.select(chain_head.c.seq)
                       .where(chain_head.c.id == HEAD_ID).scalar_subquery())
                .order_by(decisions.c.seq).limit(1)).first()


def _prepare(decision: DecisionInput,
             new_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of a decision (its id ``new_id`` unless it has one), less its chain fields,
    and its record and explanation as data."""
    record, explanation = jsonable(decision.record), jsonable(decision.explanation)
    row = {
        "decision_id": decision.decision_id or new_id, "request_id": decision.request_id,
        "key_id": decision.key_id, "detector": decision.detector,
        "model_name": decision.model_name, "model_version": decision.model_version,
        "run_id": decision.run_id, "features_version": decision.features_version,
        "record": dumps(record), "score": float(decision.score),
        "threshold": float(decision.threshold), "flagged": bool(decision.flagged),
        "explanation": None if explanation is None else dumps(explanation),
    }
    row["record_sha256"] = sha256_hex(row["record"])
    return row, {"record": record, "explanation": explanation}


def _runs(prepared: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[tuple[int, int]]:
    """The ranges of consecutive rows that share every request field (one request each; the
    time is given at insertion, the same for all)."""
    shared = [name for name in REQUEST_FIELDS if name != "created_at"]
    return spans_of([tuple(row[name] for name in shared) for row, _ in prepared])


@dataclass(frozen=True, slots=True)
class PreparedRecords:
    """What the log computes from a batch's ids and records alone (:func:`prepare_records`),
    ahead of its scores."""

    decision_ids: Sequence[str]
    record_texts: Sequence[str]
    record_sha256: list[str]
    encoded: dict[str, list[str]]


def prepare_records(decision_ids: Sequence[str], record_texts: Sequence[str]) -> PreparedRecords:
    """The records' SHA-256 and the JSON texts the chain hashes of the ids, records and
    digests: a request's records are known before it is scored, so a log may start on them."""
    digests = list(map(sha256_hex, record_texts))
    return PreparedRecords(decision_ids, record_texts, digests, encode_columns(
        {"decision_id": decision_ids, "record": record_texts, "record_sha256": digests}))


def _batch_columns(batch: DecisionBatch, digests: list[str]) -> dict[str, list[Any]]:
    """The rows of a batch's decisions, less their chain fields, column by column, as
    :func:`_prepare` makes them; each shared field holds the same object in every row."""
    rows = len(batch.decision_ids)
    shared = {"request_id": batch.request_id, "key_id": batch.key_id, "detector": batch.detector,
              "model_name": batch.model_name, "model_version": batch.model_version,
              "run_id": batch.run_id, "features_version": batch.features_version,
              "threshold": float(batch.threshold)}
    records = list(batch.record_texts)
    return {"decision_id": list(batch.decision_ids),
            **{name: [value] * rows for name, value in shared.items()},
            "record": records, "record_sha256": digests,
            "score": list(map(float, batch.scores)), "flagged": list(map(bool, batch.flagged)),
            "explanation": [None if e is None else dumps(jsonable(e))
                            for e in batch.explanations]}


def _stored(row: dict[str, Any], data: dict[str, Any]) -> StoredDecision:
    return StoredDecision(**{**row, **data})


def _loaded(row: RowMapping) -> StoredDecision:
    explanation = row["explanation"]
    return _stored(dict(row), {"record": json.loads(row["record"]),
                               "explanation": None if explanation is None
                               else json.loads(explanation)})


def _request_filters(from_time: datetime | str | None, to_time: datetime | str | None,
                     model_version: str | None,
                     detector: str | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if from_time is not None:
        where.append(requests.c.created_at >= utc_iso(from_time))
    if to_time is not None:
        where.append(requests.c.created_at < utc_iso(to_time))
    if model_version is not None:
        where.append(requests.c.model_version == model_version)
    if detector is not None:
        where.append(requests.c.detector == detector)
    return where


def _span(connection: Connection,
          request_filters: list[sa.ColumnElement[bool]]) -> list[sa.ColumnElement[bool]] | None:
    """The positions the matching requests span, as a condition on the decisions (none
    without request filters; None when no request matches). The requests' indexes find them,
    so the decisions are then read by position instead of all scanned."""
    if not request_filters:
        return []
    low, high = connection.execute(sa.select(sa.func.min(requests.c.first_seq),
                                             sa.func.max(requests.c.last_seq))
                                   .where(*request_filters)).one()
    return None if low is None else [decisions.c.seq.between(low, high)]


def _first_of_latest(connection: Connection, detector: str, before: int | None,
                     limit: int) -> int | None:
    """The first position of the latest requests of ``detector`` (before position ``before``)
    that hold ``limit`` of its decisions, or all of them; None when there are none. The
    decisions are then read from there by position, not all read and sorted."""
    query = sa.select(requests.c.first_seq, requests.c.last_seq).where(
        requests.c.detector == detector)
    if before is not None:
        query = query.where(requests.c.first_seq < before)
    low, held = None, 0
    for first, last in connection.execute(query.order_by(requests.c.first_seq.desc())
                                          .limit(limit)):
        low = first
        held += (last if before is None else min(last, before - 1)) - first + 1
        if held >= limit:
            break
    return low


def _off_anchor(anchors: Mapping[int, tuple[str, str]], tree: Frontier, seq: int) -> str | None:
    """What is wrong at position ``seq`` (whose row the walker accepted, the tree holding the
    rows up to it) by the anchors: the root of the rows up to it is not the one signed there
    (a row up to it was rewritten and the chain rehashed)."""
    anchor = anchors.get(seq)
    if anchor is None or anchor[0] == tree.root().hex():
        return None
    earlier = [position for position in anchors if position < seq]
    since = f"after seq {max(earlier)}, " if earlier else ""
    return (f"the rows up to here are not those {anchor[1]} signed: a row {since}up to seq "
            f"{seq} was rewritten and the chain rehashed")


def _bad(walker: ChainWalker, seq: int, decision_id: str | None, problem: str) -> VerifyReport:
    return VerifyReport(ok=False, checked=walker.checked, first_bad_seq=seq,
                        first_bad_decision_id=decision_id, problem=problem,
                        head_hash=walker.last_hash)
