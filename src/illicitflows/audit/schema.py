"""Tables of the audit log: the decisions, the requests they came in, and one chain-head row
that is also the write lock.

What a request's decisions share (request id, time, key, detector, model, threshold) is stored
once, in its ``audit_requests`` row, which also holds the range of positions (``seq``) of its
decisions; a decision row holds only its own fields and its request's first position. The
indexes an auditor's filters need (time, model version, detector) are on the requests: one
entry per request instead of one per decision (a 1,000-decision append writes 2.2 ms less and
commits 0.5 ms faster on SQLite). :data:`logged` joins them back into the decisions as the log
hashes and reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from illicitflows.audit.chain import GENESIS_HASH
from illicitflows.db import write_transaction

HEAD_ID = 1
#: The fields a request's decisions share, stored in its ``audit_requests`` row.
REQUEST_FIELDS = ("request_id", "created_at", "key_id", "detector", "model_name",
                  "model_version", "run_id", "features_version", "threshold")
#: The fields of each decision, in its ``audit_decisions`` row (besides its position).
DECISION_FIELDS = ("decision_id", "record", "record_sha256", "score", "flagged",
                   "explanation", "prev_hash", "row_hash")

metadata = sa.MetaData()
#: On SQLite an INTEGER primary key is the table's rowid: no separate index to write.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

requests = sa.Table(
    "audit_requests", metadata,
    sa.Column("first_seq", _POSITION, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("key_id", sa.String),
    sa.Column("detector", sa.String(16), nullable=False),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.String, nullable=False, index=True),
    sa.Column("run_id", sa.String),
    sa.Column("features_version", sa.String),
    sa.Column("threshold", sa.Double, nullable=False),
    #: A detector's latest decisions at once (the history catch-up at service start).
    sa.Index("ix_audit_requests_detector_first_seq", "detector", "first_seq"),
)

decisions = sa.Table(
    "audit_decisions", metadata,
    sa.Column("seq", _POSITION, primary_key=True, autoincrement=False),
    sa.Column("request_seq", sa.BigInteger, nullable=False),
    sa.Column("decision_id", sa.String(36), nullable=False, unique=True),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_sha256", sa.String(64), nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("explanation", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)

#: Last position of the chain. Appenders lock this row first, so the chain cannot fork; verify
#: compares it with the last row, which catches a truncated or extended tail.
chain_head = sa.Table(
    "audit_chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)

#: Hashes of the complete subtrees of 2^level leaves (level >= 8) of the Merkle tree over the
#: rows (:mod:`illicitflows.audit.tree`): written when a checkpoint is signed, not by appends.
merkle_nodes = sa.Table(
    "audit_merkle_nodes", metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

#: A decision belongs to its request only while its position is in the request's range, so
#: that a request's decisions are found by position (the join reads a range of rowids).
_BELONGS = sa.and_(decisions.c.request_seq == requests.c.first_seq,
                   decisions.c.seq.between(requests.c.first_seq, requests.c.last_seq))
_FIELDS = (decisions.c.seq, decisions.c.decision_id,
           *(requests.c[name] for name in REQUEST_FIELDS),
           *(decisions.c[name] for name in DECISION_FIELDS[1:]))
#: Every logged decision with its request's fields, as the log hashes and reports them.
logged = sa.select(*_FIELDS).select_from(decisions.join(requests, _BELONGS))
#: The same for every decision row, with null request fields where its request is missing or
#: does not span it (what verify walks: such a row then fails its hash).
every_row = sa.select(*_FIELDS).select_from(decisions.outerjoin(requests, _BELONGS))


def spans_of(keys: Sequence[Any]) -> list[tuple[int, int]]:
    """The ranges (start, stop) of consecutive equal keys: with each decision's request fields
    as its key, the requests of a run of decisions."""
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return list(zip(starts, [*starts[1:], len(keys)], strict=True))


def create_schema(engine: Engine) -> None:
    """Create the tables, their indexes and the genesis head row if missing, moving a log of
    the first layout (every field in each decision row) into this one (idempotent; on SQLite
    safe against another process doing the same at once)."""
    with write_transaction(engine) as connection:
        if _first_layout(connection):
            _split_first_layout(connection)
        metadata.create_all(connection)
        for index in requests.indexes:  # those added after a log was created
            index.create(connection, checkfirst=True)
        exists = connection.scalar(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID))
        if exists is None:
            connection.execute(chain_head.insert().values(id=HEAD_ID, seq=0,
                                                          row_hash=GENESIS_HASH))


def _first_layout(connection: Connection) -> bool:
    inspector = sa.inspect(connection)
    return (inspector.has_table(decisions.name) and "request_id" in
            {column["name"] for column in inspector.get_columns(decisions.name)})


def _split_first_layout(connection: Connection) -> None:
    """Move a first-layout log into the requests and decisions tables, in the caller's
    transaction: each run of consecutive decisions sharing every request field becomes one
    request. The rows' contents, positions and hashes are unchanged (the chain still holds)."""
    old = sa.Table(decisions.name, sa.MetaData(), autoload_with=connection)
    rows = connection.execute(sa.select(old.c.seq, *(old.c[name] for name in REQUEST_FIELDS))
                              .order_by(old.c.seq)).all()
    keys = [tuple(row[1:]) for row in rows]
    runs = [{"first_seq": rows[start].seq, "last_seq": rows[stop - 1].seq,
             **dict(zip(REQUEST_FIELDS, keys[start], strict=True))}
            for start, stop in spans_of(keys)]
    moved = decisions.to_metadata(sa.MetaData(), name=f"{decisions.name}_split")
    requests.create(connection)
    moved.create(connection)
    if runs:
        connection.execute(requests.insert(), runs)
    connection.execute(moved.insert().from_select(
        ["seq", "request_seq", *DECISION_FIELDS],
        sa.select(old.c.seq, requests.c.first_seq, *(old.c[name] for name in DECISION_FIELDS))
        .select_from(old.join(requests, old.c.seq.between(requests.c.first_seq,
                                                          requests.c.last_seq)))))
    old.drop(connection)
    connection.execute(sa.text(f"ALTER TABLE {moved.name} RENAME TO {decisions.name}"))
