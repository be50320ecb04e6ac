"""Signed checkpoints of the audit log's hash chain, after Certificate Transparency's signed
tree heads (RFC 6962, section 3.5).

The hash chain shows edits only to someone who trusts the database: whoever can write to it can
edit a decision and recompute every later hash. A checkpoint signs the log's head (its size, the
root of the Merkle tree over its rows, the time) with an Ed25519 key kept outside the database,
and is appended, one JSON line each, to a file outside it too. ``audit verify --public-key`` then
checks that the chain still passes through every signed head, so a rewrite of any decision
before the latest checkpoint is caught even when every later hash was recomputed; an auditor
needs only the public key.

What is signed is RFC 6962's ``TreeHeadSignature`` structure: version ``v1`` (0), signature
type ``tree_hash`` (1), timestamp (milliseconds since the epoch, uint64), tree size (uint64)
and the 32-byte root hash: RFC 6962's Merkle tree hash over the rows, each leaf a row's
``row_hash`` (:mod:`illicitflows.audit.merkle`). The tree also gives an auditor a short proof
that one decision is in a signed log (:func:`inclusion_proof`, :func:`check_proof`). A
checkpoint names its key by key id (:func:`~illicitflows.audit.signing.key_id`), so checkpoints
signed before and after a key rotation verify with their own public keys.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from illicitflows.audit.merkle import leaf_hash, root_from_path
from illicitflows.audit.models import VerifyReport
from illicitflows.audit.signing import key_id, load_private_key
from illicitflows.audit.store import AuditLog
from illicitflows.files import private_dir, private_file
from illicitflows.settings import data_dir

#: The private key the service signs with (a PEM file); no periodic checkpoints without it.
KEY_ENV = "ILLICITFLOWS_CHECKPOINT_KEY"
#: The checkpoint file (default: ``<data dir>/checkpoints.jsonl``).
FILE_ENV = "ILLICITFLOWS_CHECKPOINTS"
#: Seconds between the service's checkpoints (only when the log has grown).
INTERVAL_ENV = "ILLICITFLOWS_CHECKPOINT_INTERVAL_S"
DEFAULT_INTERVAL_S = 60.0
_V1, _TREE_HASH = 0, 1
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed head of the log: ``tree_size`` rows whose Merkle tree hash is ``root_hash``
    (hex), at ``timestamp`` (ms since the epoch), signed by the key ``key_id`` (base64
    ``signature``)."""

    tree_size: int
    root_hash: str
    timestamp: int
    key_id: str
    signature: str

    def when(self) -> str:
        return datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(timespec="seconds")


def tree_head(tree_size: int, root_hash: str, timestamp: int) -> bytes:
    """The bytes signed: RFC 6962's ``TreeHeadSignature`` of this head."""
    return struct.pack(">BBQQ32s", _V1, _TREE_HASH, timestamp, tree_size,
                       bytes.fromhex(root_hash))


def sign_head(audit: AuditLog, private_key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the log's current head, now (storing the Merkle nodes of the new rows first)."""
    tree_size, _ = audit.head()
    audit.tree.extend(tree_size)
    root_hash = audit.tree.root(tree_size).hex()
    timestamp = time.time_ns() // 1_000_000
    signature = private_key.sign(tree_head(tree_size, root_hash, timestamp))
    return Checkpoint(tree_size, root_hash, timestamp, key_id(private_key.public_key()),
                      base64.b64encode(signature).decode())


def default_path() -> Path:
    """``$ILLICITFLOWS_CHECKPOINTS``, else ``<data dir>/checkpoints.jsonl``."""
    return Path(os.environ.get(FILE_ENV) or data_dir() / "checkpoints.jsonl")


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one JSON line to the checkpoint file (created 0600, in a directory created 0700
    when missing) and flush it to disk."""
    private_dir(Path(path).parent)
    private_file(path)
    line = json.dumps(asdict(checkpoint), sort_keys=True, separators=(",", ":")) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(descriptor, line.encode())  # one write: appenders do not interleave
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints in the file, in file order; a malformed line is named."""
    checkpoints = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                checkpoint = Checkpoint(**fields)
                _check_types(checkpoint)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: not a checkpoint ({error})") from error
            checkpoints.append(checkpoint)
    return checkpoints


def _check_types(checkpoint: Checkpoint) -> None:
    for name, kind in (("tree_size", int), ("timestamp", int), ("root_hash", str),
                       ("key_id", str), ("signature", str)):
        value = getattr(checkpoint, name)
        if type(value) is not kind or (kind is int and value < 0):
            raise ValueError(f"{name} must be a{'n' if kind is int else ''} "
                             f"{'non-negative integer' if kind is int else 'text'}")
    bytes.fromhex(checkpoint.root_hash)


def signed_anchors(checkpoints: Sequence[Checkpoint],
                   public_keys: Mapping[str, Ed25519PublicKey]) -> dict[int, tuple[str, str]]:
    """The chain positions the checkpoints vouch for: position -> (Merkle tree hash of the rows
    up to there, which checkpoint says so). Raises :class:`ValueError` naming the first
    checkpoint whose signature does not verify with the given keys, and two that sign
    different hashes at one position."""
    anchors: dict[int, tuple[str, str]] = {}
    for number, checkpoint in enumerate(checkpoints, start=1):
        name = (f"checkpoint {number} (tree size {checkpoint.tree_size}, {checkpoint.when()}, "
                f"key {checkpoint.key_id[:16]})")
        public_key = public_keys.get(checkpoint.key_id)
        if public_key is None:
            raise ValueError(f"{name} is signed by a key none of the public keys given has "
                             "(a rotated key? pass its public key too)")
        try:
            public_key.verify(base64.b64decode(checkpoint.signature, validate=True),
                              tree_head(checkpoint.tree_size, checkpoint.root_hash,
                                        checkpoint.timestamp))
        except (InvalidSignature, ValueError) as error:
            raise ValueError(f"{name}: signature does not verify (checkpoint edited or "
                             "forged)") from error
        earlier = anchors.get(checkpoint.tree_size)
        if earlier is not None and earlier[0] != checkpoint.root_hash:
            raise ValueError(f"{name} and {earlier[1]} sign different hashes at the same "
                             "position (the chain was rewritten between them)")
        anchors.setdefault(checkpoint.tree_size, (checkpoint.root_hash, name))
    return anchors


def verify_signed(audit: AuditLog, path: Path,
                  public_keys: Mapping[str, Ed25519PublicKey]) -> VerifyReport:
    """Verify the chain and that it passes through every checkpoint in ``path`` (each signed by
    one of ``public_keys``); a failure names the checkpoint or the chain position."""
    try:
        checkpoints = read_checkpoints(path)
        if not checkpoints:
            raise ValueError(f"{path} holds no checkpoint to verify the log against")
        anchors = signed_anchors(checkpoints, public_keys)
    except (OSError, ValueError) as error:
        return VerifyReport(ok=False, checked=0, first_bad_seq=None, first_bad_decision_id=None,
                            problem=f"checkpoints: {error}", head_hash="")
    return audit.verify(anchors=anchors)


def inclusion_proof(audit: AuditLog, decision_id: str, path: Path) -> dict[str, Any]:
    """RFC 6962's proof that a decision is in the log as signed by the latest checkpoint in
    ``path`` that covers it: the row's position and hash, the audit path (hex, leaf side first)
    and that checkpoint. Raises :class:`LookupError` for an unknown decision and
    :class:`ValueError` when no checkpoint covers it yet."""
    stored = audit.get(decision_id)
    if stored is None:
        raise LookupError(f"no decision {decision_id}")
    covering = ([c for c in read_checkpoints(path) if c.tree_size >= stored.seq]
                if Path(path).exists() else [])
    if not covering:
        raise ValueError(f"no signed checkpoint covers decision {decision_id} (seq "
                         f"{stored.seq}) yet: the next one will")
    checkpoint = covering[-1]
    return {"decision_id": decision_id, "seq": stored.seq, "leaf_index": stored.seq - 1,
            "row_hash": stored.row_hash, "tree_size": checkpoint.tree_size,
            "audit_path": [node.hex() for node in
                           audit.tree.inclusion_path(stored.seq - 1, checkpoint.tree_size)],
            "checkpoint": asdict(checkpoint)}


def check_proof(proof: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]) -> None:
    """What an auditor runs on :func:`inclusion_proof`'s answer: the checkpoint's signature
    verifies with one of ``public_keys`` and the audit path leads from the row's hash to the
    signed root. Raises :class:`ValueError` saying which fails. (That the row's hash covers the
    decision as read is the chain's check: :func:`~illicitflows.audit.chain.row_hash`.)"""
    checkpoint = Checkpoint(**proof["checkpoint"])
    _check_types(checkpoint)
    signed_anchors([checkpoint], public_keys)
    found = root_from_path(leaf_hash(proof["row_hash"]), proof["leaf_index"],
                           checkpoint.tree_size,
                           [bytes.fromhex(node) for node in proof["audit_path"]])
    if found is None or found.hex() != checkpoint.root_hash:
        raise ValueError(f"the audit path of leaf {proof['leaf_index']} does not lead to the "
                         f"signed root of {checkpoint.tree_size} rows")


class CheckpointTimer:
    """A daemon thread that signs the log's head every ``interval_s`` when it has moved, and
    once more when closed."""

    def __init__(self, audit: AuditLog, private_key: Ed25519PrivateKey, path: Path,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.audit, self.private_key, self.path = audit, private_key, path
        self.interval_s = interval_s
        self._signed: tuple[int, str] | None = None  # the head (size, last hash) signed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def checkpoint(self) -> Checkpoint | None:
        """Sign and append the head unless it is the one signed last; the checkpoint or None."""
        head = self.audit.head()
        if head == self._signed:
            return None
        checkpoint = sign_head(self.audit, self.private_key)
        append_checkpoint(self.path, checkpoint)
        self._signed = head  # a head that moved meanwhile is signed at the next interval
        return checkpoint

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.checkpoint()
            except Exception:  # tried again at the next interval
                log.exception("audit checkpoint failed")

    def close(self) -> None:
        """Stop the thread after a last checkpoint."""
        self._stop.set()
        self._thread.join()
        try:
            self.checkpoint()
        except Exception:
            log.exception("last audit checkpoint failed")


def start_checkpoints(audit: AuditLog) -> CheckpointTimer | None:
    """The service's checkpoint thread when ``$ILLICITFLOWS_CHECKPOINT_KEY`` names a key (a
    key that cannot be loaded stops the start), else None."""
    key_path = os.environ.get(KEY_ENV)
    if not key_path:
        return None
    interval = float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_S)
    if not interval > 0:
        raise ValueError(f"{INTERVAL_ENV} must be a positive number of seconds, got {interval}")
    return CheckpointTimer(audit, load_private_key(Path(key_path)), default_path(), interval)
