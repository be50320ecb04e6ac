"""The hash chain: how a row's hash is computed, and a walker that checks rows in order."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from itertools import repeat
from json.encoder import encode_basestring_ascii
from operator import is_
from typing import Any

from illicitflows.audit.canonical import dumps, plain_texts, sha256_hex

GENESIS_HASH = "0" * 64
#: Every column but ``prev_hash`` and ``row_hash``; ``record`` and ``explanation`` enter as
#: their stored canonical JSON text.
HASHED_FIELDS = (
    "decision_id", "seq", "request_id", "created_at", "key_id", "detector", "model_name",
    "model_version", "run_id", "features_version", "record", "record_sha256", "score",
    "threshold", "flagged", "explanation",
)


#: ``"name":`` of each hashed field, in the canonical (sorted) order.
_KEYS = tuple((name, f'"{name}":') for name in sorted(HASHED_FIELDS))
_LITERALS = {None: "null", True: "true", False: "false"}


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the hashed fields of row)``, hex."""
    body = ",".join(key + _value(row[name]) for name, key in _KEYS)
    return hashlib.sha256((prev_hash + "{" + body + "}").encode()).hexdigest()


def _value(value: Any) -> str:
    """Canonical JSON of one field value: what :func:`dumps` writes for it, built directly
    for the types a row holds (text, null, booleans, integers, finite floats)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is bool or value is None:
        return _LITERALS[value]
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return dumps(value)


def chain_columns(prev_hash: str, columns: Mapping[str, Sequence[Any]],
                  encoded: Mapping[str, Sequence[str]] | None = None,
                  ) -> tuple[list[str], list[str]]:
    """The ``prev_hash`` and ``row_hash`` of each row of ``columns`` (every hashed field, one
    value per row), the rows linked in order after ``prev_hash`` (the hashes of
    :func:`row_hash`). A field holding the same object in every row (a request's model, key,
    time ...) is encoded once for all of them, the others column by column; ``encoded`` may
    hold some fields' canonical JSON texts already (:func:`encode_columns`)."""
    prevs, hashes = [], []
    for body in _bodies(columns, encoded or {}):
        prevs.append(prev_hash)
        prev_hash = hashlib.sha256((prev_hash + body).encode()).hexdigest()
        hashes.append(prev_hash)
    return prevs, hashes


def encode_columns(columns: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """The canonical JSON text of each value of each column, as :func:`chain_columns` hashes
    them (computed ahead of the chain, e.g. while the request is still being scored)."""
    return {name: plain_texts(list(values)) or list(map(_value, values))
            for name, values in columns.items()}


def _bodies(columns: Mapping[str, Sequence[Any]],
            encoded: Mapping[str, Sequence[str]]) -> list[str]:
    """The canonical JSON of each row's hashed fields, from a %-format with ``%s`` for each
    field whose object differs between rows."""
    rows = len(columns[HASHED_FIELDS[0]])
    if not rows:
        return []
    parts, varying = [], []
    for name, key in _KEYS:
        values = columns[name]
        if name in encoded:
            parts.append(key + "%s")
            varying.append(encoded[name])
        elif all(map(is_, values, repeat(values[0]))):
            parts.append(key + _value(values[0]).replace("%", "%%"))
        else:
            parts.append(key + "%s")
            varying.append(plain_texts(values) or list(map(_value, values)))
    template = "{" + ",".join(parts) + "}"
    if not varying:
        return [template % ()] * rows
    return [template % values for values in zip(*varying, strict=True)]


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
