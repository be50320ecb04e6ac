"""The Merkle tree over the audit log: RFC 6962 tree hashes and audit paths (against the RFC's
recursive definitions), the stored nodes, and inclusion proofs of a decision against a signed
checkpoint (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from illicitflows.audit import AuditLog, DecisionInput
from illicitflows.audit.checkpoints import (
    append_checkpoint,
    check_proof,
    inclusion_proof,
    sign_head,
)
from illicitflows.audit.merkle import (
    inclusion_path,
    leaf_hash,
    node_hash,
    root_from_path,
    root_of,
)
from illicitflows.audit.schema import merkle_nodes
from illicitflows.audit.signing import generate_keys, load_private_key, load_public_keys
from illicitflows.audit.tree import BLOCK
from illicitflows.db import make_engine


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962, section 2.1, word for word."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while 2 * k < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path_of(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962, section 2.1.1: PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = 1
    while 2 * k < len(leaves):
        k *= 2
    if m < k:
        return path_of(m, leaves[:k]) + [mth(leaves[k:])]
    return path_of(m - k, leaves[k:]) + [mth(leaves[:k])]


LEAVES = [leaf_hash(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(70)]


def subtree(lo: int, hi: int) -> bytes:
    return mth(LEAVES[lo:hi])


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 70])
def test_tree_hash_is_rfc_6962s(size: int) -> None:
    assert root_of(LEAVES[:size]) == mth(LEAVES[:size])


def test_audit_paths_are_rfc_6962s_and_lead_to_the_root() -> None:
    for size in range(1, 40):
        root = mth(LEAVES[:size])
        for index in range(size):
            path = inclusion_path(index, size, subtree)
            assert path == path_of(index, LEAVES[:size])
            assert root_from_path(LEAVES[index], index, size, path) == root
            assert root_from_path(LEAVES[index + 1], index, size, path) != root
            if path:
                assert root_from_path(LEAVES[index], index, size, path[:-1]) != root
    assert root_from_path(LEAVES[0], 5, 5, []) is None
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_path(3, 3, subtree)


def decision(i: int) -> DecisionInput:
    return DecisionInput(
        request_id=f"req-{i // 50}", detector="trade", model_name="m", model_version="1",
        record={"declared_value": float(i), "date": datetime(2023, 1, 1)}, score=0.2,
        threshold=0.5, flagged=False)


def test_stored_nodes_give_the_trees_roots_and_paths(database_url: str, log: AuditLog) -> None:
    stored = log.append([decision(i) for i in range(2 * BLOCK + 190)])
    leaves = [leaf_hash(row.row_hash) for row in stored]
    assert log.tree.extend(2 * BLOCK + 90) == 3  # two blocks and the node over both
    assert log.tree.extend(2 * BLOCK + 190) == 0  # no new complete block
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert sorted(connection.execute(
            merkle_nodes.select().with_only_columns(merkle_nodes.c.level,
                                                    merkle_nodes.c.idx)).all()) == \
            [(8, 0), (8, 1), (9, 0)]
    engine.dispose()
    for size in (1, 255, 256, 257, 512, 513, 600, len(leaves)):
        assert log.tree.root(size) == mth(leaves[:size]), size
    for index in (0, 255, 256, 300, 511, 512, len(leaves) - 1):
        path = log.tree.inclusion_path(index, len(leaves))
        assert root_from_path(leaves[index], index, len(leaves), path) == mth(leaves)


def test_a_decision_is_proven_in_a_signed_log(log: AuditLog, tmp_path: Path) -> None:
    private, public, checkpoints = (tmp_path / "k", tmp_path / "k.pub",
                                    tmp_path / "checkpoints.jsonl")
    generate_keys(private, public)
    stored = log.append([decision(i) for i in range(300)])
    append_checkpoint(checkpoints, sign_head(log, load_private_key(private)))
    later = log.append([decision(300)])[0]
    keys = load_public_keys([public])
    proof = inclusion_proof(log, stored[123].decision_id, checkpoints)
    assert (proof["seq"], proof["tree_size"], len(proof["audit_path"])) == (124, 300, 9)
    check_proof(proof, keys)
    with pytest.raises(ValueError, match="does not lead to the signed root"):
        check_proof({**proof, "row_hash": stored[124].row_hash}, keys)
    with pytest.raises(ValueError, match="signature does not verify"):
        check_proof({**proof, "checkpoint": {**proof["checkpoint"], "tree_size": 301}}, keys)
    with pytest.raises(ValueError, match="no signed checkpoint covers"):
        inclusion_proof(log, later.decision_id, checkpoints)
    with pytest.raises(LookupError):
        inclusion_proof(log, "00000000-0000-7000-8000-000000000000", checkpoints)
