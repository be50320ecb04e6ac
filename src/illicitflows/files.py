"""Private files: the data directory and what the service stores in it (raw records in the
audit log, hashed keys, the checkpoint signing key) are readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory, created (with missing parents) with mode 0700 when missing; an
    existing one keeps its mode."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> Path:
    """``path``, created empty with mode 0600 when missing (its directory must exist); an
    existing one keeps its mode and contents."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.fchmod(descriptor, FILE_MODE)
    os.close(descriptor)
    return path
