"""An audit log on each test database (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from illicitflows.audit import AuditLog


@pytest.fixture
def log(database_url: str):
    audit_log = AuditLog(database_url)
    yield audit_log
    audit_log.close()
