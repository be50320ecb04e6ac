"""The history catches up with the audit log at service start.

History commits do not wait for the disk, so a power cut can take its last rows; the audit log,
committed durably before any answer, still holds those decisions with their canonical records.
The decisions of a detector after the newest one the history holds are appended again, oldest
first, so that the rebuilt feature state is the one that scored them.

A request's history rows commit while its decisions are being logged: a crash between the two
commits leaves either logged decisions the history lacks (appended, as above) or rows for
decisions that were never logged nor answered. Those rows, after the
newest logged one, are dropped first, so that a retried request is not counted twice.
"""

from __future__ import annotations

import logging

from illicitflows.audit.canonical import canonical_json
from illicitflows.audit.models import StoredDecision
from illicitflows.audit.store import AuditLog
from illicitflows.serving.history import HistoryStore

PAGE = 1000
log = logging.getLogger("illicitflows.serving")


def restore_history(store: HistoryStore, audit: AuditLog, detector: str, id_column: str,
                    time_column: str) -> int:
    """Drop the rows of ``store`` after its newest logged decision of ``detector``, then append
    the logged decisions it lacks; returns how many were appended."""
    newest, after = _newest_held(store, audit, detector, time_column), 0
    if newest is not None:
        after = newest.seq
        dropped = store.remove_after(store.seq_of(newest.decision_id,
                                                  newest.record[time_column]))
        if dropped:
            log.warning("%s history held %d decision(s) that were never logged (a crash "
                        "before their audit commit): dropped", detector, dropped)
    restored = 0
    while page := audit.decisions_after(detector, after, PAGE):
        store.append([canonical_json(d.record) for d in page],
                     [str(d.record[id_column]) for d in page],
                     [d.decision_id for d in page], [d.record[time_column] for d in page],
                     [d.score for d in page], [d.flagged for d in page])
        restored += len(page)
        after = page[-1].seq
    return restored


def _newest_held(store: HistoryStore, audit: AuditLog, detector: str,
                 time_column: str) -> StoredDecision | None:
    """The newest decision of ``detector`` whose record the history holds (None: none)."""
    before = None
    while page := audit.decisions_before(detector, before, PAGE):
        held = store.held({d.decision_id: d.record[time_column] for d in page})
        for decision in page:
            if decision.decision_id in held:
                return decision
        before = page[-1].seq
    return None
