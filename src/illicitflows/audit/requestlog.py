"""The hand-over of scoring decisions to the audit log, one object per commit.

A :class:`RequestLog` takes one micro-batch of requests (one request, or several scored
together) through a visible lifecycle:

1. :meth:`~RequestLog.begin` with the decision ids and typed records, before they are scored
   (with a writer process, it starts writing their canonical JSON and digests meanwhile);
2. :meth:`~RequestLog.texts`: the records' canonical JSON, as the history and the log store it;
3. :meth:`~RequestLog.attach` the decisions, one :class:`DecisionBatch` per request: the
   commit starts (with a writer process, it runs while the caller goes on);
4. :meth:`~RequestLog.commit`: wait until it is durable (one transaction, one ``fsync``, for
   all the requests) or raise :class:`AuditWriteError`; only then may the requests be
   answered;

or :meth:`~RequestLog.abandon` at any point before :meth:`~RequestLog.attach` when scoring
failed. :meth:`~RequestLog.recall` reads logged decisions back (a retry's originals).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from illicitflows.audit.canonical import frame_texts
from illicitflows.audit.models import DecisionBatch, StoredDecision
from illicitflows.audit.store import AuditLog
from illicitflows.audit.writer import AuditWriteError, AuditWriter

__all__ = ["AuditWriteError", "RequestLog"]


class RequestLog:
    """One commit of decisions to ``audit``, through ``writer``'s process when given (see the
    module's documentation for the lifecycle)."""

    def __init__(self, audit: AuditLog, writer: AuditWriter | None = None) -> None:
        self.audit = audit
        self.writer = writer
        self._records: pd.DataFrame | None = None
        self._texts: list[str] | None = None
        self._wait: Callable[[], None] | None = None
        self.state = "new"

    def begin(self, decision_ids: Sequence[str], records: pd.DataFrame) -> None:
        """The decision ids and typed records (in log order), before they are scored."""
        self._expect("new")
        if self.writer is not None:
            self.writer.prepare(decision_ids, records)
        self._records, self.state = records, "begun"

    def texts(self) -> list[str]:
        """The records' canonical JSON (:func:`frame_texts`), in order."""
        self._expect("begun")
        if self._texts is None:
            assert self._records is not None
            self._texts = (self.writer.texts() if self.writer is not None
                           else frame_texts(self._records))
        return self._texts

    def attach(self, batches: Sequence[DecisionBatch]) -> None:
        """Hand the decisions over, one batch per request, their ids and records those
        begun, in order; the commit starts. If this raises, nothing was logged and the log
        is free again."""
        self._expect("begun")
        self.state = "attached"
        if self.writer is not None:
            self._wait = self.writer.submit(list(batches))
        else:
            self.audit.log_batches(batches)

    def commit(self) -> None:
        """Wait until the attached decisions are durably logged (raises if they were not)."""
        self._expect("attached")
        self.state = "committed"
        if self._wait is not None:
            self._wait()

    def abandon(self) -> None:
        """Scoring failed before the decisions were attached: the log drops the records."""
        if self.state == "begun" and self.writer is not None:
            self.writer.abandon()
        self.state = "abandoned"

    def recall(self, decision_ids: Sequence[str]) -> list[StoredDecision]:
        """Logged decisions by id; :class:`LookupError` naming those the log lacks."""
        found = [self.audit.get(decision_id) for decision_id in decision_ids]
        missing = [i for i, stored in zip(decision_ids, found, strict=True) if stored is None]
        if missing:
            raise LookupError(f"decision(s) {missing[:5]} not in the audit log")
        return [stored for stored in found if stored is not None]

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise RuntimeError(f"request log is {self.state}, not {state}")
