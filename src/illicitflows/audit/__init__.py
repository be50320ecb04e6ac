"""Tamper-evident audit log of scoring decisions (a hash chain in any SQLAlchemy database)."""

from illicitflows.audit.models import (
    DecisionBatch,
    DecisionInput,
    Page,
    StoredDecision,
    VerifyReport,
)
from illicitflows.audit.store import AuditLog, default_url

__all__ = ["AuditLog", "DecisionBatch", "DecisionInput", "Page", "StoredDecision", "VerifyReport",
           "default_url"]
