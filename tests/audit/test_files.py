"""Data files are private: the data directory is created 0700 and the databases in it 0600
(the audit log holds raw records, the key store key hashes); one variable moves all three
databases elsewhere."""

from __future__ import annotations

import os
import stat

from illicitflows.access.keys import KeyStore
from illicitflows.audit import AuditLog, DecisionInput
from illicitflows.files import private_dir, private_file
from illicitflows.serving.history import HistoryStore
from illicitflows.settings import DATABASE_URL_ENV, database_url


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_databases_are_created_0600_in_a_0700_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ILLICITFLOWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    old_umask = os.umask(0o022)  # a usual umask: files would be 0644 otherwise
    try:
        log = AuditLog()
        log.append([DecisionInput(request_id="r", detector="trade", model_name="m",
                                  model_version="1", record={"id": "x"}, score=0.1,
                                  threshold=0.5, flagged=False)])
        keys = KeyStore()
        keys.create("scorer")
        HistoryStore(database_url("history"), "trade")
        data = tmp_path / "data"
        assert mode(data) == 0o700
        names = sorted(path.name for path in data.iterdir())
        assert {"audit.db", "audit.db-wal", "keys.db", "history.db"} <= set(names)
        assert {name: mode(data / name) for name in names} == dict.fromkeys(names, 0o600)
        log.close()
        keys.close()
    finally:
        os.umask(old_umask)


def test_private_helpers_keep_what_exists(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    assert mode(private_dir(shared)) == 0o755
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
    existing = tmp_path / "existing.txt"
    existing.write_text("kept")
    os.chmod(existing, 0o644)
    assert mode(private_file(existing)) == 0o644 and existing.read_text() == "kept"
    assert mode(private_file(tmp_path / "new.txt")) == 0o600


def test_one_database_url_serves_audit_history_and_keys(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'all.db'}"
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    log, keys = AuditLog(), KeyStore()
    assert log.url == keys.url == database_url("history") == url
    log.close()
    keys.close()
