"""The history catches up with the audit log at service start.

History commits do not wait for the disk, so a power cut can take its last rows; the audit log,
committed durably before any answer, still holds those decisions with their canonical records.
The decisions of a detector after the newest one the history holds are appended again, oldest
first, so that the rebuilt feature state is the one that scored them.
"""

from __future__ import annotations

from illicitflows.audit.store import AuditLog
from illicitflows.serving.history import HistoryStore

PAGE = 1000


def restore_history(store: HistoryStore, audit: AuditLog, detector: str, id_column: str,
                    time_column: str) -> int:
    """Append the audited decisions of ``detector`` that ``store`` lacks; returns how many."""
    after = _newest_held(store, audit, detector)
    restored = 0
    while page := audit.decisions_after(detector, after, PAGE):
        store.append([d.record for d in page], [str(d.record[id_column]) for d in page],
                     [d.decision_id for d in page], [d.record[time_column] for d in page],
                     [d.score for d in page], [d.flagged for d in page])
        restored += len(page)
        after = page[-1].seq
    return restored


def _newest_held(store: HistoryStore, audit: AuditLog, detector: str) -> int:
    """Audit position of the newest decision of ``detector`` in the history (0: none is)."""
    before = None
    while page := audit.ids_before(detector, before, PAGE):
        held = store.held([decision_id for _, decision_id in page])
        for seq, decision_id in page:
            if decision_id in held:
                return seq
        before = page[-1][0]
    return 0
