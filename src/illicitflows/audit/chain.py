"""The hash chain: how a row's hash is computed, and a walker that checks rows in order."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, MutableMapping, Sequence
from json.encoder import encode_basestring_ascii
from operator import itemgetter
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


def chain_rows(prev_hash: str, rows: Sequence[MutableMapping[str, Any]]) -> str:
    """Link ``rows`` (each holding every hashed field) in order after ``prev_hash``: set each
    row's ``prev_hash`` and ``row_hash`` (the hashes of :func:`row_hash`); returns the last.
    A field holding the same object in every row (a request's model, key, time ...) is
    encoded once for all of them."""
    for row, body in zip(rows, _bodies(rows), strict=True):
        row["prev_hash"] = prev_hash
        prev_hash = row["row_hash"] = hashlib.sha256((prev_hash + body).encode()).hexdigest()
    return prev_hash


def _bodies(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The canonical JSON of each row's hashed fields, written field by field."""
    if not rows:
        return []
    template, varying = _template(rows)
    if not varying:
        return [template % ()] * len(rows)
    columns = [list(map(_value, map(itemgetter(name), rows))) for name in varying]
    return [template % values for values in zip(*columns, strict=True)]


def _template(rows: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """The canonical JSON of the hashed fields as a %-format, with ``%s`` for each field
    whose object differs between rows, and the names of those fields in order."""
    first, parts, varying = rows[0], [], []
    for name, key in _KEYS:
        value = first[name]
        if all(row[name] is value for row in rows):
            parts.append(key + _value(value).replace("%", "%%"))
        else:
            parts.append(key + "%s")
            varying.append(name)
    return "{" + ",".join(parts) + "}", tuple(varying)


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
