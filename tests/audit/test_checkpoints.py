"""Signed checkpoints: a chain rewritten with every later hash recomputed passes the plain
verify but not the signed one; key rotation; forged or edited checkpoints; the command line and
the service's periodic checkpoints. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from illicitflows.audit import AuditLog, DecisionInput
from illicitflows.audit.chain import GENESIS_HASH, row_hash
from illicitflows.audit.checkpoints import (
    FILE_ENV,
    INTERVAL_ENV,
    KEY_ENV,
    append_checkpoint,
    read_checkpoints,
    sign_head,
    start_checkpoints,
    verify_signed,
)
from illicitflows.audit.schema import HEAD_ID, chain_head, decisions, every_row, requests
from illicitflows.audit.signing import generate_keys, load_private_key, load_public_keys
from illicitflows.cli import app
from illicitflows.db import make_engine

runner = CliRunner()


def decision(i: int) -> DecisionInput:
    return DecisionInput(
        request_id=f"req-{i // 5}", detector="transactions", model_name="aml", model_version="1",
        record={"amount_paid": 100.0 + i, "timestamp": datetime(2022, 9, 1, 0, i % 60)},
        score=i / 100, threshold=0.5, flagged=i % 3 == 0)


@pytest.fixture
def keys(tmp_path: Path):
    """Two key pairs (before and after a rotation): (private, public) paths each."""
    pairs = []
    for name in ("old", "new"):
        private, public = tmp_path / f"{name}.key", tmp_path / f"{name}.pub"
        generate_keys(private, public)
        pairs.append((private, public))
    return pairs


def checkpoint(log: AuditLog, private: Path, path: Path) -> None:
    append_checkpoint(path, sign_head(log, load_private_key(private)))


def rehash_after_editing(url: str, seq: int) -> None:
    """What an insider with write access does: change a decision's score, then recompute the
    hash of it and of every later row and move the head, with the project's own function."""
    engine = make_engine(url)
    with engine.begin() as connection:
        rows = [dict(row) for row in connection.execute(
            every_row.order_by(decisions.c.seq)).mappings()]
        prev = GENESIS_HASH
        for row in rows:
            if row["seq"] == seq:
                row["score"] = 0.001
            row["prev_hash"] = prev
            row["row_hash"] = prev = row_hash(prev, row)
            connection.execute(decisions.update().where(decisions.c.seq == row["seq"]).values(
                score=row["score"], prev_hash=row["prev_hash"], row_hash=row["row_hash"]))
        connection.execute(chain_head.update().where(chain_head.c.id == HEAD_ID)
                           .values(row_hash=prev))
    engine.dispose()


def test_a_fully_rehashed_rewrite_is_caught_by_a_signed_checkpoint(
        database_url: str, log: AuditLog, keys, tmp_path: Path) -> None:
    (private, public), path = keys[0], tmp_path / "elsewhere" / "checkpoints.jsonl"
    log.append([decision(i) for i in range(10)])
    checkpoint(log, private, path)
    log.append([decision(i) for i in range(10, 20)])
    checkpoint(log, private, path)
    log.append([decision(i) for i in range(20, 25)])  # after the last checkpoint
    public_keys = load_public_keys([public])
    intact = verify_signed(log, path, public_keys)
    assert (intact.ok, intact.checked, intact.anchors) == (True, 25, 2)

    rehash_after_editing(database_url, 14)
    assert log.verify().ok  # the unkeyed chain cannot tell
    report = verify_signed(log, path, public_keys)
    assert (report.ok, report.first_bad_seq) == (False, 20)
    assert "after seq 10, up to seq 20 was rewritten" in report.problem
    assert "checkpoint 2 (tree size 20" in report.problem


def test_a_cut_tail_with_its_head_moved_back_is_caught(database_url: str, log: AuditLog, keys,
                                                       tmp_path: Path) -> None:
    (private, public), path = keys[0], tmp_path / "checkpoints.jsonl"
    stored = log.append([decision(i) for i in range(8)])
    checkpoint(log, private, path)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(decisions.delete().where(decisions.c.seq > 5))
        connection.execute(requests.delete().where(requests.c.first_seq > 5))
        connection.execute(chain_head.update().values(seq=5, row_hash=stored[4].row_hash))
    engine.dispose()
    assert log.verify().ok
    report = verify_signed(log, path, load_public_keys([public]))
    assert not report.ok and "vouches for 8 rows but the chain has 5" in report.problem


def test_key_rotation_old_checkpoints_verify_with_the_old_key(log: AuditLog, keys,
                                                             tmp_path: Path) -> None:
    (old_private, old_public), (new_private, new_public) = keys
    path = tmp_path / "checkpoints.jsonl"
    log.append([decision(i) for i in range(4)])
    checkpoint(log, old_private, path)
    log.append([decision(i) for i in range(4, 9)])
    checkpoint(log, new_private, path)
    both = verify_signed(log, path, load_public_keys([old_public, new_public]))
    assert (both.ok, both.anchors) == (True, 2)
    for only in (old_public, new_public):
        report = verify_signed(log, path, load_public_keys([only]))
        assert not report.ok and "none of the public keys given" in report.problem


def test_edited_or_forged_checkpoints_are_named(log: AuditLog, keys, tmp_path: Path) -> None:
    (private, public), (other_private, _) = keys
    path = tmp_path / "checkpoints.jsonl"
    log.append([decision(i) for i in range(3)])
    checkpoint(log, private, path)
    public_keys = load_public_keys([public])
    line = json.loads(path.read_text())
    path.write_text(json.dumps({**line, "tree_size": 2}) + "\n")  # moved back by hand
    report = verify_signed(log, path, public_keys)
    assert not report.ok and "checkpoint 1 " in report.problem
    assert "signature does not verify" in report.problem
    forged = sign_head(log, load_private_key(other_private))  # another key, claiming ours
    path.write_text(json.dumps({**line, "signature": forged.signature}) + "\n")
    assert "signature does not verify" in verify_signed(log, path, public_keys).problem
    path.write_text("{not json\n")
    assert "line 1: not a checkpoint" in verify_signed(log, path, public_keys).problem
    path.write_text("")
    assert "no checkpoint" in verify_signed(log, path, public_keys).problem


def test_the_checkpoint_file_and_private_key_are_private(log: AuditLog, keys,
                                                          tmp_path: Path) -> None:
    private, public = keys[0]
    path = tmp_path / "checkpoints.jsonl"
    checkpoint(log, private, path)
    checkpoint(log, private, path)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [c.tree_size for c in read_checkpoints(path)] == [0, 0]
    with pytest.raises(FileExistsError):
        generate_keys(private, tmp_path / "another.pub")


def test_command_line_keygen_checkpoint_and_verify(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ILLICITFLOWS_DATA_DIR", str(tmp_path / "data"))
    for name in ("ILLICITFLOWS_DATABASE_URL", "ILLICITFLOWS_AUDIT_URL", FILE_ENV, KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    private, public = tmp_path / "signing.key", tmp_path / "signing.pub"
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(url)
    log.append([decision(i) for i in range(12)])
    assert runner.invoke(app, ["audit", "keygen", "--private-key", str(private),
                               "--public-key", str(public)]).exit_code == 0
    result = runner.invoke(app, ["audit", "checkpoint", "--url", url, "--key", str(private)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "checkpoints.jsonl").exists()
    verify = ["audit", "verify", "--url", url, "--public-key", str(public)]
    result = runner.invoke(app, verify)
    assert result.exit_code == 0 and "12 decisions verified against 1 signed" in result.output
    rehash_after_editing(url, 3)
    assert runner.invoke(app, ["audit", "verify", "--url", url]).exit_code == 0
    result = runner.invoke(app, verify)
    assert result.exit_code == 1 and "BROKEN at seq 12" in result.output
    result = runner.invoke(app, ["audit", "verify", "--url", url, "--public-key",
                                 str(private.with_suffix(".missing"))])
    assert result.exit_code == 2 and "cannot read the key file" in result.output
    log.close()


def test_the_service_signs_the_head_periodically_when_it_moved(log: AuditLog, keys,
                                                             tmp_path: Path,
                                                             monkeypatch) -> None:
    path = tmp_path / "checkpoints.jsonl"
    monkeypatch.setenv(KEY_ENV, str(keys[0][0]))
    monkeypatch.setenv(FILE_ENV, str(path))
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    log.append([decision(i) for i in range(3)])
    timer = start_checkpoints(log)
    assert timer is not None
    deadline = time.monotonic() + 10
    while not (path.exists() and read_checkpoints(path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # several intervals with the log unchanged: no new checkpoint
    assert [c.tree_size for c in read_checkpoints(path)] == [3]
    log.append([decision(3)])
    timer.close()  # signs the last head at once
    assert [c.tree_size for c in read_checkpoints(path)] == [3, 4]
    assert verify_signed(log, path, load_public_keys([keys[0][1]])).ok
    monkeypatch.delenv(KEY_ENV)
    assert start_checkpoints(log) is None


def test_checkpoints_of_an_empty_log_sign_the_empty_tree(log: AuditLog, keys,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    checkpoint(log, keys[0][0], path)
    assert read_checkpoints(path)[0].root_hash == hashlib.sha256(b"").hexdigest()
    assert verify_signed(log, path, load_public_keys([keys[0][1]])).ok
