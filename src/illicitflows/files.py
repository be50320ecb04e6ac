"""Private files: state that holds secrets or raw records (key hashes, audit log) is readable by
its owner only, a file 0600 in a directory 0700.

Only what these functions create is given these modes, and an existing file of ours is
narrowed to 0600; an existing directory keeps its mode (it may be shared, ``/tmp`` say). SQLite
creates a database's ``-wal`` and ``-shm`` files with the database file's mode, so a database
made private here stays private.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a directory; the directories created for it (parents too) are 0700."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by another process meanwhile
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode is narrowed by the umask only
    return path


def private_file(path: Path) -> Path:
    """``path`` as an existing file readable and writable by its owner only (created empty,
    0600, in a :func:`private_dir`, or narrowed to 0600 when it exists)."""
    path = Path(path)
    private_dir(path.parent)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(descriptor).st_mode) != FILE_MODE:
            os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)
    return path


def private_sqlite(url: str) -> str:
    """``url``; when it names a SQLite file, the file is made private first (other databases
    and in-memory SQLite are left to their server's access control)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        private_file(Path(parsed.database))
    return url
