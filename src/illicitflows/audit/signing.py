"""Ed25519 keys that sign audit checkpoints: generated, stored and loaded as PEM files.

The private key lives outside the database (a file readable by its owner only); an auditor
needs only the public key. A key is named by its key id, the SHA-256 of its public key in DER
(SubjectPublicKeyInfo), as RFC 6962 names a log by its ``LogID``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from illicitflows.files import FILE_MODE


class KeyFileError(ValueError):
    """A key file that is missing, not PEM, or not an Ed25519 key; names the file."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the public key's DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_keys(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM (the private key 0600; neither file may exist yet);
    returns its key id."""
    for path in (private_path, public_path):
        if Path(path).exists():
            raise FileExistsError(f"{path} exists: a key is never overwritten")
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    _write_new(private_path, private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), FILE_MODE)
    _write_new(public_path, public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return key_id(public_key)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(descriptor, mode)
        handle.write(data)
        handle.flush()
        os.fsync(descriptor)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``."""
    key = _load(path, lambda data: serialization.load_pem_private_key(data, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 public keys in the PEM files ``paths``, by key id."""
    keys = {}
    for path in paths:
        key = _load(path, serialization.load_pem_public_key)
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path}: not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def _load(path: Path, parse):  # noqa: ANN001, ANN202 - cryptography's loaders
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read the key file ({error.strerror})") from error
    try:
        return parse(data)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{path}: not a PEM key ({error})") from error
