"""API keys: create, revoke, list, authenticate; and which role may do what.

A secret is ``ifk_<key_id>_<token>`` with a 256-bit ``secrets.token_urlsafe(32)`` token; it is
shown once and only ``sha256(salt + secret)`` is stored. A slow password hash (scrypt, bcrypt)
protects guessable passwords; a 256-bit random token cannot be guessed or brute-forced from its
hash, so one SHA-256 is as safe here and keeps authentication (run on every request) in the
microseconds. The per-key salt keeps equal hashes from ever linking two databases.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

import sqlalchemy as sa

from illicitflows.db import make_engine, write_transaction
from illicitflows.settings import database_url

Role = Literal["scorer", "analyst", "auditor", "admin"]
ROLES = frozenset(get_args(Role))
PREFIX = "ifk"

_SCORER = frozenset({"score"})
#: Auditors read everything (decisions, dispositions, models, reports) and write nothing; they
#: may review a period's accounts (each review is logged, as who asked it).
_AUDITOR = frozenset({"read_decisions", "read_models", "read_reports", "review_accounts"})
#: Analysts read as auditors do, record what a flag turned out to be and export reports
#: (goAML drafts, training labels) from their dispositions.
_ANALYST = _AUDITOR | {"record_dispositions", "export_reports"}
#: Roles that may sign in to the review page (all that read decisions).
REVIEWERS = frozenset({"analyst", "auditor", "admin"})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "scorer": _SCORER,
    "analyst": _ANALYST,
    "auditor": _AUDITOR,
    "admin": _SCORER | _ANALYST | {"manage_keys", "manage_models"},
}

metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("label", sa.String),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32)),
)


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` grants ``permission`` (unknown roles grant nothing)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def default_url() -> str:
    """``$ILLICITFLOWS_DATABASE_URL``, else ``sqlite:///<data dir>/keys.db``."""
    return database_url("keys")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an active key and its role."""

    key_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: never its secret."""

    key_id: str
    role: Role
    label: str | None
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True, slots=True)
class _StoredKey:
    """A key's row as read at ``read_at`` (``time.monotonic()``)."""

    role: Role
    salt: str
    secret_sha256: str
    revoked: bool
    read_at: float


class KeyStore:
    """API keys in any SQLAlchemy database (a SQLite file is created private, 0600).

    :meth:`authenticate` may reuse a key's row read less than ``max_age`` seconds ago, so a
    revocation made by another process (the CLI) takes effect within ``max_age``; one made
    through this store at once. Only rows of existing keys are kept, so callers with made-up
    key ids cannot grow the cache."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self._engine = make_engine(self.url)
        self._cache: dict[str, _StoredKey] = {}
        with write_transaction(self._engine) as connection:
            metadata.create_all(connection)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def create(self, role: Role, label: str | None = None) -> tuple[str, str]:
        """A new key: ``(key_id, secret)``. The secret is not stored and cannot be shown again."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
        key_id = secrets.token_hex(8)
        secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        salt = secrets.token_hex(16)
        with self._engine.begin() as connection:
            connection.execute(api_keys.insert().values(
                key_id=key_id, role=role, label=label, salt=salt,
                secret_sha256=_digest(salt, secret), created_at=_now()))
        return key_id, secret

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False if there is no active key with this id."""
        with self._engine.begin() as connection:
            result = connection.execute(
                api_keys.update().where(api_keys.c.key_id == key_id,
                                        api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now()))
        self._cache.pop(key_id, None)
        return result.rowcount == 1

    def authenticate(self, secret: str, max_age: float = 0.0) -> Principal | None:
        """The principal of an active key's secret, or None (malformed, unknown, wrong,
        revoked); the key's row may be one read up to ``max_age`` seconds ago."""
        prefix, _, rest = secret.partition("_")
        key_id, _, token = rest.partition("_")
        if prefix != PREFIX or not key_id or not token or not secret.isascii():
            return None
        stored = self._stored(key_id, max_age)
        if stored is None or not hmac.compare_digest(_digest(stored.salt, secret),
                                                     stored.secret_sha256):
            return None
        return None if stored.revoked else Principal(key_id, stored.role)

    def _stored(self, key_id: str, max_age: float) -> _StoredKey | None:
        """The row of ``key_id``: the cached one when younger than ``max_age``, else read."""
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached.read_at < max_age:
            return cached
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys.c.role, api_keys.c.salt, api_keys.c.secret_sha256,
                          api_keys.c.revoked_at).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            self._cache.pop(key_id, None)
            return None
        stored = _StoredKey(row.role, row.salt, row.secret_sha256, row.revoked_at is not None,
                            now)
        if max_age > 0:
            self._cache[key_id] = stored
        return stored

    def list(self) -> list[KeyInfo]:
        """All keys, oldest first, revoked ones included."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(api_keys.c.key_id, api_keys.c.role, api_keys.c.label,
                          api_keys.c.created_at, api_keys.c.revoked_at)
                .order_by(api_keys.c.created_at, api_keys.c.key_id))
            return [KeyInfo(**row) for row in rows.mappings()]


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
