"""History of scored records, so the service rebuilds its feature state after a restart and an
auditor's replay sees exactly the history a decision saw. SQLAlchemy: SQLite by default, any
SQLAlchemy URL works.

The history is state, not the record: on SQLite its commits do not wait for the disk. The audit
log, committed durably before any answer, holds every decision's record, and the service
appends whatever a power cut took from the history again at start
(:mod:`illicitflows.serving.recovery`).

A decision's row is found by its event time and decision id: the ``event_time`` index grows at
its end (records arrive in time order), while an index of random decision ids would take a
leaf page per row (at 1M rows it made each 1,000-record append cost 27 ms instead of 7)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from illicitflows.db import insert_tuples, make_engine, write_transaction

#: What :meth:`HistoryStore.load` adds to each record: its position, score, flag, decision id
#: and canonical JSON text.
ROW_COLUMNS = ("_seq", "_score", "_flagged", "_decision_id", "_record")
#: The columns :meth:`HistoryStore.append` fills, in the order of its arguments.
_COLUMNS = ("record_id", "decision_id", "event_time", "record", "score", "flagged")
#: Rows read at a time by :meth:`HistoryStore.chunks` (a service's rebuild, a replay).
CHUNK_ROWS = 50_000


class HistoryStore:
    """Append-only table of the records a domain has scored, in arrival order (``seq``)."""

    def __init__(self, url: str, domain: str) -> None:
        self.engine = make_engine(url, durable=False)
        self.metadata = MetaData()
        self.table = Table(
            f"history_{domain}", self.metadata,
            Column("seq", Integer, primary_key=True, autoincrement=True),
            Column("record_id", String(128), nullable=False),
            Column("decision_id", String(64), nullable=False),
            Column("event_time", String(40), nullable=False, index=True),
            Column("record", Text, nullable=False),
            Column("score", Float, nullable=False),
            Column("flagged", Boolean, nullable=False),
        )
        self.metadata.create_all(self.engine)

    def append(self, texts: list[str], ids: list[str], decision_ids: list[str],
               times: list[str], scores: list[float], flagged: list[bool]) -> list[int]:
        """Store a batch in one transaction; returns the sequence numbers given. ``texts`` are
        the records' canonical JSON (:mod:`illicitflows.audit.canonical`: floats read back
        exactly), as the audit log stores them."""
        rows = list(zip(ids, decision_ids, times, texts, scores, flagged, strict=True))
        if not rows:
            return []
        with write_transaction(self.engine) as connection:
            if connection.dialect.name != "sqlite":
                result = connection.execute(insert(self.table).returning(self.table.c.seq),
                                            [dict(zip(_COLUMNS, row, strict=True))
                                             for row in rows])
                return sorted(int(seq) for seq in result.scalars())
            # SQLite: the write lock is held, so the next numbers are free; no RETURNING
            last = connection.scalar(select(func.max(self.table.c.seq))) or 0
            seqs = list(range(last + 1, last + 1 + len(rows)))
            insert_tuples(connection, self.table, ("seq", *_COLUMNS),
                          [(seq, *row) for seq, row in zip(seqs, rows, strict=True)])
            return seqs

    def remove(self, seqs: list[int]) -> None:
        """Take back a batch whose decisions could not be logged."""
        if seqs:
            with write_transaction(self.engine) as connection:
                connection.execute(delete(self.table).where(self.table.c.seq.in_(seqs)))

    def remove_after(self, seq: int) -> int:
        """Drop the records after position ``seq``; returns how many there were."""
        with write_transaction(self.engine) as connection:
            return connection.execute(delete(self.table).where(self.table.c.seq > seq)).rowcount

    def load(self, since: str | None = None, before_seq: int | None = None,
             until: str | None = None) -> pd.DataFrame:
        """Stored records (``seq`` order), from ``since`` (ISO time), before ``before_seq`` and
        stamped before ``until`` (ISO time), with the :data:`ROW_COLUMNS` of their rows:
        :meth:`chunks` in one frame."""
        frames = list(self.chunks(since, before_seq, until=until))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def chunks(self, since: str | None = None, before_seq: int | None = None,
               rows: int = CHUNK_ROWS, until: str | None = None) -> Iterator[pd.DataFrame]:
        """The rows :meth:`load` gives, at most ``rows`` at a time in ``seq`` order (each
        chunk read when the previous one is consumed), so a long history is never held at
        once."""
        after = 0
        while True:
            query = select(self.table).where(self.table.c.seq > after).order_by(
                self.table.c.seq).limit(rows)
            if since is not None:
                query = query.where(self.table.c.event_time >= since)
            if until is not None:
                query = query.where(self.table.c.event_time < until)
            if before_seq is not None:
                query = query.where(self.table.c.seq < before_seq)
            with self.engine.connect() as connection:
                found = connection.execute(query).all()
            if not found:
                return
            yield _frame(found)
            after = found[-1].seq

    def decisions_of(self, record_ids: Sequence[str],
                     event_times: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Record id -> (decision id, canonical record text) of those of these records (id
        and event time, as stored) the history holds; the first row of an id stored twice.
        Found through the event-time index (a retry's record carries its original time)."""
        wanted = set(zip(record_ids, event_times, strict=True))
        if not wanted:
            return {}
        columns = self.table.c
        query = select(columns.record_id, columns.event_time, columns.decision_id,
                       columns.record).where(
            columns.event_time.in_({time for _, time in wanted}),
            columns.record_id.in_({record_id for record_id, _ in wanted})).order_by(columns.seq)
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                if (row.record_id, row.event_time) in wanted:
                    found.setdefault(row.record_id, (row.decision_id, row.record))
        return found

    def held(self, event_times: Mapping[str, str]) -> set[str]:
        """Which of these decisions (decision id -> event time of its record) have their
        record in the history."""
        columns = self.table.c
        with self.engine.connect() as connection:
            rows = connection.execute(select(columns.decision_id, columns.event_time).where(
                columns.event_time.in_(set(event_times.values())),
                columns.decision_id.in_(list(event_times))))
            return {row.decision_id for row in rows
                    if event_times[row.decision_id] == row.event_time}

    def seq_of(self, decision_id: str, event_time: str) -> int | None:
        """The position of a decision's record (at ``event_time``) in the history."""
        columns = self.table.c
        with self.engine.connect() as connection:
            return connection.execute(select(columns.seq).where(
                columns.event_time == event_time,
                columns.decision_id == decision_id)).scalar_one_or_none()

    def latest_time(self) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(select(self.table.c.event_time).order_by(
                self.table.c.event_time.desc()).limit(1)).scalar_one_or_none()


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    """Stored rows as records with their :data:`ROW_COLUMNS`."""
    records = pd.DataFrame([json.loads(r.record) for r in rows])
    records["_seq"] = [r.seq for r in rows]
    records["_score"] = [r.score for r in rows]
    records["_flagged"] = [bool(r.flagged) for r in rows]
    records["_decision_id"] = [r.decision_id for r in rows]
    records["_record"] = [r.record for r in rows]
    return records
