"""Where illicitflows keeps its local state: one data directory, overridable by environment,
and the one database URL that may hold the audit log, history and keys instead."""

from __future__ import annotations

import os
from pathlib import Path

from illicitflows.files import private_dir

DATA_DIR_ENV = "ILLICITFLOWS_DATA_DIR"
#: A SQLAlchemy URL (PostgreSQL in production) for the audit log, history and API keys at once;
#: ``ILLICITFLOWS_AUDIT_URL``, ``_HISTORY_URL`` and ``_KEYS_URL`` override it one by one.
DATABASE_URL_ENV = "ILLICITFLOWS_DATABASE_URL"


def data_dir() -> Path:
    """The project's data directory (``$ILLICITFLOWS_DATA_DIR`` or ``./data``), created on use
    with mode 0700 (it holds raw records and key hashes)."""
    return private_dir(Path(os.environ.get(DATA_DIR_ENV, "data")).resolve())


def database_url(name: str) -> str:
    """Where the ``name`` database (``audit``, ``history``, ``keys``) is by default:
    ``$ILLICITFLOWS_DATABASE_URL``, else ``sqlite:///<data dir>/<name>.db``."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{data_dir() / name}.db"
