"""The hash chain: how a row's hash is computed, and a walker that checks rows in order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from illicitflows.audit.canonical import dumps, sha256_hex

GENESIS_HASH = "0" * 64
#: Every column but ``prev_hash`` and ``row_hash``; ``record`` and ``explanation`` enter as
#: their stored canonical JSON text.
HASHED_FIELDS = (
    "decision_id", "seq", "request_id", "created_at", "key_id", "detector", "model_name",
    "model_version", "run_id", "features_version", "record", "record_sha256", "score",
    "threshold", "flagged", "explanation",
)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the hashed fields of row)``, hex."""
    body = dumps({name: row[name] for name in HASHED_FIELDS})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class ChainWalker:
    """Checks rows handed over in ``seq`` order, starting at the genesis."""

    def __init__(self) -> None:
        self.checked = 0
        self.last_hash = GENESIS_HASH
        self.last_decision_id: str | None = None

    def problem(self, row: Mapping[str, Any]) -> str | None:
        """What is wrong with the next row, or None (then it becomes the chain's last row)."""
        expected = self.checked + 1
        if row["seq"] != expected:
            return f"seq gap: expected seq {expected}, found {row['seq']} (rows deleted?)"
        if row["prev_hash"] != self.last_hash:
            return (f"broken link: prev_hash does not match the row_hash of seq {expected - 1} "
                    "(row inserted or deleted, or the previous row rewritten)")
        if sha256_hex(row["record"]) != row["record_sha256"]:
            return "record_sha256 does not match the stored record (record edited)"
        if row_hash(row["prev_hash"], row) != row["row_hash"]:
            return "row_hash does not match the row's contents (row edited)"
        self.checked = expected
        self.last_hash = row["row_hash"]
        self.last_decision_id = row["decision_id"]
        return None
