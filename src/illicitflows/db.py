"""SQLAlchemy engines: durable WAL SQLite with explicit write locks, or any other database as is.

A new SQLite database file is created with mode 0600 (:mod:`illicitflows.files`).

SQLite gets ``journal_mode=WAL`` (readers never block the writer), ``synchronous=FULL`` (a
committed transaction survives a power cut) and a busy timeout. State that can be rebuilt from
a durable record (the scoring history, from the audit log) may ask for ``synchronous=NORMAL``
instead: commits do not wait for the disk, and a power cut can lose the last transactions but
never corrupts the database. SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``, so
:func:`write_transaction` can ask for ``BEGIN IMMEDIATE``: the write lock is taken before the
first read, and two writers queue instead of racing.

Checkpoints (copying the WAL back into the database file, with an ``fsync`` of both) do not run
inside a committing request: SQLite's automatic checkpoint is off (``wal_autocheckpoint=0``)
and one background thread runs a ``PASSIVE`` checkpoint (it waits for no reader or writer)
shortly after each burst of commits. Durability is unchanged: a commit is durable when its WAL
frames are, and the WAL is replayed when the database is opened again.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from illicitflows.files import private_file

SQLITE_BUSY_TIMEOUT_S = 60.0
#: Page size of new SQLite databases: a 1,000-decision audit commit writes a quarter as many
#: WAL frames as with the default 4 KiB (2 ms less per request); existing ones keep theirs.
SQLITE_PAGE_SIZE = 16384
#: How long the checkpointer lets commits gather before checkpointing them.
CHECKPOINT_DELAY_S = 0.2
_BEGIN = "illicitflows_sqlite_begin"
log = logging.getLogger(__name__)


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def make_engine(url: str, durable: bool = True) -> Engine:
    """An engine for ``url``; SQLite ones are set up as described in the module docstring
    (``durable=False``: ``synchronous=NORMAL``, for rebuildable state only)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        private_file(Path(parsed.database))  # SQLite gives its WAL and shm files this mode
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", partial(_sqlite_connect,
                                               "FULL" if durable else "NORMAL"))
    sa.event.listen(engine, "begin", _sqlite_begin)
    sa.event.listen(engine, "commit", lambda _connection: CHECKPOINTER.note(engine))
    return engine


def _sqlite_connect(synchronous: str, dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 stops issuing BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # new databases only
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does it
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


def insert_columns(connection: Connection, table: sa.Table,
                   columns: dict[str, list[Any]]) -> None:
    """Insert the rows of ``columns`` (each column's plain Python values, one per row) in one
    statement (:func:`insert_tuples`)."""
    insert_tuples(connection, table, tuple(columns), list(zip(*columns.values(), strict=True)))


def insert_tuples(connection: Connection, table: sa.Table, names: Sequence[str],
                  rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows``, tuples of plain values of the columns ``names``, in one statement; on
    SQLite straight through the driver's ``executemany`` (a fifth faster for 1,000 rows than
    SQLAlchemy's per-row parameter processing, which plain values do not need)."""
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    connection.exec_driver_sql(sql, rows)


def checkpoint(engine: Engine) -> tuple[int, int, int]:
    """A ``PASSIVE`` WAL checkpoint of a SQLite engine's database: ``(busy, WAL frames,
    frames checkpointed)``; skipped, ``(0, 0, 0)``, when the database file is gone."""
    database = engine.url.database
    if not database or not Path(database).exists():
        return 0, 0, 0
    with engine.connect() as connection:  # on the driver's connection: outside any BEGIN
        driver = connection.connection.driver_connection
        busy, frames, done = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return busy, frames, done


class Checkpointer:
    """One daemon thread that checkpoints the SQLite engines with new commits, a short delay
    after they commit (engines are held weakly: a dropped engine is forgotten)."""

    def __init__(self, delay_s: float = CHECKPOINT_DELAY_S) -> None:
        self.delay_s = delay_s
        self._pending: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, engine: Engine) -> None:
        """Checkpoint ``engine`` soon (it has just committed)."""
        with self._lock:
            self._pending.add(engine)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Checkpoint every pending engine now, in the calling thread."""
        with self._lock:
            engines = list(self._pending)
            self._pending.clear()
        for engine in engines:
            try:
                checkpoint(engine)
            except sa.exc.SQLAlchemyError as error:  # retried after the engine's next commit
                log.warning("WAL checkpoint of %s failed: %s", engine.url, error)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.delay_s)
            self._wake.clear()
            self.flush()


CHECKPOINTER = Checkpointer()
