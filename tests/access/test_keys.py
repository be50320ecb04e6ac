"""API keys: create, authenticate, revoke, list; secrets never stored; the role matrix."""

from __future__ import annotations

import re
import sqlite3
import stat
import time

import pytest

from illicitflows.access.keys import ROLE_PERMISSIONS, KeyStore, Principal, allowed


@pytest.fixture
def store(database_url: str):
    key_store = KeyStore(database_url)
    yield key_store
    key_store.close()


def test_create_then_authenticate(store: KeyStore) -> None:
    key_id, secret = store.create("scorer", "bank A batch scorer")
    assert re.fullmatch(rf"ifk_{key_id}_[A-Za-z0-9_-]{{43}}", secret)
    assert store.authenticate(secret) == Principal(key_id, "scorer")
    auditor_id, auditor_secret = store.create("auditor")
    assert store.authenticate(auditor_secret) == Principal(auditor_id, "auditor")
    analyst_id, analyst_secret = store.create("analyst", "FIU desk")
    assert store.authenticate(analyst_secret) == Principal(analyst_id, "analyst")


def test_wrong_or_malformed_secrets_fail(store: KeyStore) -> None:
    key_id, secret = store.create("admin")
    other_id, _ = store.create("scorer")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in [flipped, secret.replace(key_id, other_id), f"ifk_nokey_{secret[-43:]}", "",
                "ifk", "ifk__", f"xyz_{key_id}_{secret[-43:]}", secret + "x", secret + "\udcff"]:
        assert store.authenticate(bad) is None, bad


def test_revoked_key_fails(store: KeyStore) -> None:
    key_id, secret = store.create("scorer")
    assert store.revoke(key_id)
    assert store.authenticate(secret) is None
    assert not store.revoke(key_id)  # already revoked
    assert not store.revoke("unknown")


def test_list_shows_keys_without_secrets(store: KeyStore) -> None:
    first, secret = store.create("scorer", "ingest")
    second, _ = store.create("auditor")
    store.revoke(second)
    listed = {info.key_id: info for info in store.list()}
    assert set(listed) == {first, second}
    assert (listed[first].role, listed[first].label, listed[first].revoked_at) == (
        "scorer", "ingest", None)
    assert listed[second].revoked_at is not None
    assert secret not in repr(store.list())


def test_secret_is_never_stored_in_clear(tmp_path) -> None:
    path = tmp_path / "keys.db"
    store = KeyStore(f"sqlite:///{path}")
    secrets = [store.create("admin")[1] for _ in range(3)]
    store.close()
    with sqlite3.connect(path) as connection:
        cells = [str(cell) for row in connection.execute("SELECT * FROM api_keys")
                 for cell in row]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in secrets:
        token = secret.split("_", 2)[2]
        assert not any(token in cell or secret in cell for cell in cells)
        assert token.encode() not in raw


def test_unknown_role_is_refused(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="role"):
        store.create("root")


def test_authentication_is_fast(store: KeyStore) -> None:
    if store.url.startswith("postgresql"):
        pytest.skip("SQLite only: the hash's cost is measured, not a server's round trips")
    _, secret = store.create("scorer")
    timings = []
    for _ in range(200):
        start = time.perf_counter()
        assert store.authenticate(secret) is not None
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 1e-3


def test_role_matrix() -> None:
    assert allowed("scorer", "score") and not allowed("scorer", "read_decisions")
    assert allowed("auditor", "read_decisions") and not allowed("auditor", "score")
    assert not allowed("auditor", "manage_keys")
    admin = ROLE_PERMISSIONS["admin"]
    assert admin == ROLE_PERMISSIONS["scorer"] | ROLE_PERMISSIONS["analyst"] | {
        "manage_keys", "manage_models"}
    assert ROLE_PERMISSIONS["auditor"] < ROLE_PERMISSIONS["analyst"]
    for writes in ("record_dispositions", "export_reports"):
        assert allowed("analyst", writes) and allowed("admin", writes)
        assert not allowed("auditor", writes) and not allowed("scorer", writes)
    assert not allowed("analyst", "score") and not allowed("analyst", "manage_keys")
    assert all(allowed(role, "review_accounts") for role in ("analyst", "auditor", "admin"))
    assert not allowed("scorer", "review_accounts")
    assert all(allowed("admin", p) for p in admin)
    assert not allowed("nobody", "score")


def test_cached_lookups_see_a_revocation_elsewhere_within_max_age(store: KeyStore) -> None:
    key_id, secret = store.create("scorer")
    assert store.authenticate(secret, max_age=0.3) == Principal(key_id, "scorer")
    elsewhere = KeyStore(store.url)  # the CLI, say
    try:
        assert elsewhere.revoke(key_id)
    finally:
        elsewhere.close()
    assert store.authenticate(secret, max_age=0.3) is not None  # the cached row, still young
    assert store.authenticate(secret) is None  # max_age 0: read again
    time.sleep(0.35)
    assert store.authenticate(secret, max_age=0.3) is None


def test_a_revocation_through_the_same_store_is_immediate(store: KeyStore) -> None:
    key_id, secret = store.create("admin")
    assert store.authenticate(secret, max_age=60) is not None
    store.revoke(key_id)
    assert store.authenticate(secret, max_age=60) is None


def test_cached_lookups_do_not_read_the_database(store: KeyStore, monkeypatch) -> None:
    _, secret = store.create("scorer")
    assert store.authenticate(secret, max_age=60) is not None
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    def no_database() -> None:
        raise AssertionError("read the database")

    monkeypatch.setattr(store._engine, "connect", no_database)
    assert store.authenticate(secret, max_age=60) is not None
    assert store.authenticate(wrong, max_age=60) is None  # checked against the cached hash


def test_made_up_key_ids_are_not_cached(store: KeyStore) -> None:
    for n in range(50):
        assert store.authenticate(f"ifk_{n:016x}_{'x' * 43}", max_age=60) is None
    assert store._cache == {}


def test_key_store_file_is_private(tmp_path) -> None:
    path = tmp_path / "keys.db"
    store = KeyStore(f"sqlite:///{path}")
    store.create("admin")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for sidecar in path.parent.glob("keys.db-*"):  # WAL and shared memory: the file's mode
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar
