"""Tables of the audit log: the decisions, and one chain-head row that is also the write lock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from illicitflows.audit.chain import GENESIS_HASH
from illicitflows.db import write_transaction

HEAD_ID = 1

metadata = sa.MetaData()

decisions = sa.Table(
    "audit_decisions", metadata,
    #: On SQLite an INTEGER primary key is the table's rowid: no separate index to write.
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("decision_id", sa.String(36), nullable=False, unique=True),
    sa.Column("request_id", sa.String, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("key_id", sa.String),
    sa.Column("detector", sa.String(16), nullable=False),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.String, nullable=False, index=True),
    sa.Column("run_id", sa.String),
    sa.Column("features_version", sa.String),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_sha256", sa.String(64), nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("explanation", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    #: A detector's latest decisions at once (the history catch-up at service start).
    sa.Index("ix_audit_decisions_detector_seq", "detector", "seq"),
)

#: Last position of the chain. Appenders lock this row first, so the chain cannot fork; verify
#: compares it with the last row, which catches a truncated or extended tail.
chain_head = sa.Table(
    "audit_chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)


def create_schema(engine: Engine) -> None:
    """Create the tables, their indexes and the genesis head row if missing (idempotent; on
    SQLite safe against another process doing the same at once)."""
    with write_transaction(engine) as connection:
        metadata.create_all(connection)
        for index in decisions.indexes:  # those added after a log was created
            index.create(connection, checkfirst=True)
        exists = connection.scalar(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID))
        if exists is None:
            connection.execute(chain_head.insert().values(id=HEAD_ID, seq=0,
                                                          row_hash=GENESIS_HASH))
