"""SQLAlchemy engines: durable WAL SQLite with explicit write locks, or any other database as is.

SQLite gets ``journal_mode=WAL`` (readers never block the writer), ``synchronous=FULL`` (a
committed transaction survives a power cut) and a busy timeout. State that can be rebuilt from
a durable record (the scoring history, from the audit log) may ask for ``synchronous=NORMAL``
instead: commits do not wait for the disk, and a power cut can lose the last transactions but
never corrupts the database. SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``, so
:func:`write_transaction` can ask for ``BEGIN IMMEDIATE``: the write lock is taken before the
first read, and two writers queue instead of racing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SQLITE_BUSY_TIMEOUT_S = 60.0
_BEGIN = "illicitflows_sqlite_begin"


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def make_engine(url: str, durable: bool = True) -> Engine:
    """An engine for ``url``; SQLite ones are set up as described in the module docstring
    (``durable=False``: ``synchronous=NORMAL``, for rebuildable state only)."""
    if sa.make_url(url).get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", partial(_sqlite_connect,
                                               "FULL" if durable else "NORMAL"))
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 stops issuing BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its start on SQLite (``BEGIN
    IMMEDIATE``); elsewhere a plain transaction (lock rows with ``SELECT ... FOR UPDATE``).
    Commits on success, rolls back on error."""
    with engine.connect() as connection:
        connection.execution_options(**{_BEGIN: "IMMEDIATE"})
        with connection.begin():
            yield connection
