"""Offline scoring of a file as the service would score it: one path with the service.

The file's records go through the service's engine (:class:`~illicitflows.serving.engine.
Scorer`): the same validation, history state, arrival rules, features, model, explanations and
retry handling. They are sent in time order (ties in the file's order: how the service takes
one request's records), ``REQUEST_ROWS`` records a request, and the answers are put back in the
file's order. The state starts where the service's starts: from the detector's scoring state
and a history store, empty or a copy of the service's (``--history``), so an analyst scores a
file as the service, with its history, would. A record whose id that history has already
decided is answered with its original decision from the audit log (``repeat``).

Nothing is written where the service keeps its state: the history is copied into a scratch
store that is deleted afterwards, and decisions go to a :class:`DryRunLog`, which logs nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from illicitflows.audit.canonical import frame_texts
from illicitflows.audit.models import DecisionBatch, StoredDecision
from illicitflows.audit.requestlog import RequestLog
from illicitflows.audit.store import AuditLog
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.domains import DOMAINS, LABEL_COLUMNS
from illicitflows.progress import StepCallback, no_progress
from illicitflows.serving.arrival import Arrival, time_order
from illicitflows.serving.engine import (
    SCORERS,
    ConflictError,
    Decision,
    InputError,
    ModelRef,
    Scorer,
    risk_bands,
)
from illicitflows.serving.history import HistoryStore

#: Records per request sent to the engine (the service's default micro-batch).
REQUEST_ROWS = 2_000


class DryRunLog(RequestLog):
    """The audit log's lifecycle without logging: decisions are dropped at ``attach``; the
    originals of retried records are read from ``audit`` when one is given."""

    def __init__(self, audit: AuditLog | None = None) -> None:
        super().__init__(audit)  # type: ignore[arg-type]

    def attach(self, batches: Sequence[DecisionBatch]) -> None:
        self._expect("begun")
        self.state = "attached"

    def recall(self, decision_ids: Sequence[str]) -> list[StoredDecision]:
        if self.audit is None:
            raise LookupError(f"decision(s) {list(decision_ids)[:5]} were made by the service: "
                              "give its audit log to read them")
        return super().recall(decision_ids)


@dataclass(frozen=True)
class HistorySource:
    """Where an offline run's state starts: a history store to copy (None: empty) and the
    audit log holding its decisions (None: none)."""

    history_url: str | None = None
    audit_url: str | None = None

    @classmethod
    def parse(cls, history: str | None, audit: str | None = None) -> HistorySource:
        """``history``: a SQLAlchemy URL or a service's data directory (its ``history.db``,
        and its ``audit.db`` unless ``audit`` is given)."""
        if history is None or "://" in history:
            return cls(history, audit)
        folder = Path(history)
        if not (folder / "history.db").is_file():
            raise ValueError(f"--history {history}: neither a database URL nor a data "
                             "directory holding history.db")
        if audit is None and (folder / "audit.db").is_file():
            audit = f"sqlite:///{folder.resolve() / 'audit.db'}"
        return cls(f"sqlite:///{folder.resolve() / 'history.db'}", audit)


def api_records(frame: pd.DataFrame, domain: str) -> list[dict]:
    """Canonical records as the API takes them: the schema's fields but the labels, as the
    audit log's canonical JSON writes them."""
    fields = [f.name for f in DOMAINS[domain].schema.fields
              if f.name in frame.columns and f.name not in LABEL_COLUMNS]
    return [json.loads(text) for text in frame_texts(frame[fields])]


def score_file(detector: Detector, model: ModelRef, frame: pd.DataFrame,
               source: HistorySource | None = None, arrival: Arrival | None = None,
               request_rows: int = REQUEST_ROWS,
               step: StepCallback = no_progress) -> pd.DataFrame:
    """The decision columns of each record of ``frame`` (canonical, validated), in its order:
    score, flagged, threshold, risk band, the flagged ones' reasons (``family: sentence |
    ...``) and ``repeat`` (answered with the service's original decision). Raises
    :class:`ValueError` naming the file's rows that the service would refuse."""
    kind, source = SCORERS[detector.domain], source or HistorySource()
    order = time_order(frame[kind.time_column])
    audit = AuditLog(source.audit_url) if source.audit_url else None
    decisions: list[Decision] = []
    try:
        with tempfile.TemporaryDirectory(prefix="illicitflows-score-") as scratch:
            store = HistoryStore(f"sqlite:///{Path(scratch) / 'history.db'}",
                                 detector.domain)
            if source.history_url is not None:
                copy_history(HistoryStore(source.history_url, detector.domain), store, kind)
            scorer = kind(detector, model, store, arrival or Arrival(clock_skew=None))
            for start in range(0, len(order), request_rows):
                rows = order[start:start + request_rows]
                records = api_records(frame.iloc[rows], detector.domain)
                try:
                    batch = scorer.score(records, DryRunLog(audit),
                                         request_id=f"offline-{start // request_rows}")
                except (InputError, ConflictError) as error:
                    raise ValueError(_refusal(error, frame.index[rows])) from error
                decisions += batch.decisions
                step(f"{min(start + request_rows, len(order)):,} records")
            store.engine.dispose()
    finally:
        if audit is not None:
            audit.close()
    return _columns(decisions, order, frame.index)


def copy_history(source: HistoryStore, target: HistoryStore, kind: type[Scorer]) -> int:
    """Copy every row of ``source`` (in order, a chunk at a time) into ``target``; returns
    how many."""
    copied = 0
    for chunk in source.chunks():
        texts = chunk["_record"].tolist()
        stored = [json.loads(text) for text in texts]
        target.append(texts, [str(r[kind.id_column]) for r in stored],
                      chunk["_decision_id"].tolist(), [r[kind.time_column] for r in stored],
                      chunk["_score"].tolist(), chunk["_flagged"].tolist())
        copied += len(chunk)
    return copied


def _refusal(error: InputError | ConflictError, rows: pd.Index) -> str:
    """What the service would answer, naming the file's rows."""
    lines = [f"{_where(issue['index'], rows)}, field {issue['field']}: {issue['reason']}"
             for issue in error.issues[:20]]
    return (f"{len(error.issues)} record(s) the service would refuse:\n" + "\n".join(lines))


def _where(index: int | None, rows: pd.Index) -> str:
    return "the file" if index is None else f"row {rows[index]}"


def _columns(decisions: list[Decision], order: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """The decisions (in sending order) as columns in the file's order (a repeat keeps the
    threshold it was decided with)."""
    scores, thresholds = np.empty(len(order)), np.empty(len(order))
    scores[order] = [d.score for d in decisions]
    thresholds[order] = [d.threshold for d in decisions]
    flagged = np.empty(len(order), dtype=bool)
    flagged[order] = [d.flagged for d in decisions]
    reasons = np.empty(len(order), dtype=object)
    reasons[order] = [" | ".join(f"{r.family}: {r.sentence}" for r in d.explanation.reasons)
                      if d.flagged and d.explanation is not None else "" for d in decisions]
    repeat = np.empty(len(order), dtype=bool)
    repeat[order] = [d.repeat for d in decisions]
    bands = [risk_bands([score], threshold)[0]
             for score, threshold in zip(scores.tolist(), thresholds.tolist(), strict=True)]
    return pd.DataFrame({"score": scores, "flagged": flagged, "threshold": thresholds,
                         "risk_band": bands, "reasons": reasons, "repeat": repeat},
                        index=index)
