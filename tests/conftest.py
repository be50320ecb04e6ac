"""Shared test fixtures: paths to fixture files and the shared data folder; the databases the
audit log, history and keys are tested on (SQLite, and a throw-away PostgreSQL server)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
NO_POSTGRES = ("no PostgreSQL server binary found (initdb and pg_ctl under "
               "/usr/lib/postgresql/*/bin or on the PATH): install Debian's postgresql package "
               "to run the PostgreSQL tests")


def _load_pg():
    """``tests/pg.py`` (loaded by path: the tests are no package)."""
    name = "illicitflows_tests_pg"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "pg.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throw-away PostgreSQL server for the session (skips when none is installed)."""
    with _load_pg().postgres_server() as server:
        if server is None:
            pytest.skip(NO_POSTGRES)
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in the test's directory, or a new database on the
    session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres").new_database()
