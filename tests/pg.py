"""A throw-away PostgreSQL server for tests and benchmarks, started with Debian's binaries.

``initdb`` and ``pg_ctl`` run in a fresh temporary directory that also holds the server's unix
socket (no TCP port: parallel runs cannot collide) with ``trust`` authentication; each test
gets a schema of its own. PostgreSQL
refuses to run as root, so as root (CI) the directory belongs to the ``postgres`` user and the
binaries run through ``runuser -u postgres --``.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``, else
    the directory of ``initdb`` on the PATH; None when there is no server binary."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit()
                   else 0)
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None or not (Path(initdb).parent / "pg_ctl").exists():
        return None
    return Path(initdb).parent


class PostgresServer:
    """A server in a temporary directory; :meth:`new_database` gives each test its own
    database. ``durable=False`` turns ``fsync`` off (tests), else the server's defaults
    (benchmarks)."""

    def __init__(self, binaries: Path, durable: bool = False) -> None:
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="illicitflows-pg-"))
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]
        self.data = self.root / "data"
        options = (f"-k {self.root} -c listen_addresses='' -c max_connections=200 "
                   "-c shared_buffers=32MB")
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SERVER_USER,
                  "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start")
        self._numbers = itertools.count(1)

    def _run(self, binary: str, *args: str) -> None:
        result = subprocess.run([*self._as_user, str(self.binaries / binary), *args],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{binary} failed ({result.returncode}): {result.stderr.strip()}"
                               + (f"\n{log.read_text()}" if log.exists() else ""))

    def url(self, schema: str | None = None) -> str:
        """SQLAlchemy URL of the server's database (psycopg 3, over the unix socket), with
        ``schema`` first on the search path."""
        url = f"postgresql+psycopg://{SERVER_USER}@/postgres?host={self.root}"
        return url if schema is None else f"{url}&options=-csearch_path%3D{schema}"

    def new_database(self) -> str:
        """An empty schema of its own (much quicker to make than a database); the URL whose
        tables land in it."""
        name = f"test_{next(self._numbers)}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {name}")
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(durable: bool = False) -> Iterator[PostgresServer | None]:
    """A running throw-away server, or None when no server binary is installed."""
    binaries = server_binaries()
    if binaries is None:
        yield None
        return
    server = PostgresServer(binaries, durable)
    try:
        yield server
    finally:
        server.stop()
