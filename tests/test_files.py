"""Private files and directories: created owner-only, existing shared directories untouched."""

from __future__ import annotations

import os
import stat

from illicitflows.files import private_dir, private_file, private_sqlite


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_file_in_new_directories(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        path = private_file(tmp_path / "a" / "b" / "secret.db")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and path.read_bytes() == b""
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700


def test_existing_directory_keeps_its_mode_and_file_keeps_its_content(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    path = shared / "keys.db"
    path.write_bytes(b"data")
    path.chmod(0o644)
    private_file(path)
    assert mode(path) == 0o600 and path.read_bytes() == b"data"
    assert mode(shared) == 0o755
    assert private_dir(shared) == shared and mode(shared) == 0o755


def test_private_sqlite_only_touches_sqlite_files(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x' / 'audit.db'}"
    assert private_sqlite(url) == url and mode(tmp_path / "x" / "audit.db") == 0o600
    assert private_sqlite("sqlite://") == "sqlite://"
    assert private_sqlite("sqlite:///:memory:") == "sqlite:///:memory:"
    assert private_sqlite("postgresql://u@localhost/db") == "postgresql://u@localhost/db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
