"""Replay a logged decision: the recorded model version re-scores the recorded record with the
history it saw, and the score and reasons must match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.audit.store import AuditLog
from illicitflows.explain.reasons import explain
from illicitflows.modeling.domains import DOMAINS
from illicitflows.serving.arrival import feature_times
from illicitflows.serving.engine import SCORERS, feed_history
from illicitflows.serving.history import HistoryStore
from illicitflows.tracking.registry import load_detector

SCORE_TOLERANCE = 1e-9


@dataclass
class ReplayReport:
    """What replaying a decision found."""

    decision_id: str
    model: str
    logged_score: float
    replayed_score: float
    same_score: bool
    logged_reasons: list[str]
    replayed_reasons: list[str]
    same_reasons: bool
    explanation: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.same_score and self.same_reasons


def replay_decision(decision_id: str, audit: AuditLog, history_url: str) -> ReplayReport:
    """Re-score a decision with its recorded model version and history."""
    stored = audit.get(decision_id)
    if stored is None:
        raise LookupError(f"no decision {decision_id!r} in the audit log")
    detector, _ = load_detector(stored.detector, stored.model_version)
    history = HistoryStore(history_url, stored.detector)
    seq = history.seq_of(decision_id, stored.record[SCORERS[stored.detector].time_column])
    if seq is None:
        raise LookupError(f"decision {decision_id!r} has no record in the history store "
                          f"{history_url}")
    domain = DOMAINS[stored.detector]
    record = domain.schema.parse(pd.DataFrame([stored.record])).frame
    since = None
    if stored.detector == "transactions":
        horizon = pd.Timedelta(seconds=detector.builder.config.horizon_s)
        since = (pd.Timestamp(record["timestamp"].iloc[0]) - horizon).isoformat()
    state = detector.builder.scoring_state()  # the history it saw, as the scorer took it
    prior = feed_history(detector, history.chunks(since=since, before_seq=seq), state)
    time_column = SCORERS[stored.detector].time_column
    features = detector.builder.transform(
        record.assign(**{time_column: feature_times(record[time_column], prior.clock)}), state)
    score = float(detector.score_features(features)[0])
    explanation = explain(detector, features)[0]
    logged = [r["feature"] for r in (stored.explanation or {}).get("reasons", [])]
    replayed = [r.feature for r in explanation.reasons][: len(logged)] if logged else []
    return ReplayReport(decision_id=decision_id,
                        model=f"{stored.model_name} v{stored.model_version}",
                        logged_score=stored.score, replayed_score=score,
                        same_score=bool(np.isclose(score, stored.score, rtol=0,
                                                   atol=SCORE_TOLERANCE)),
                        logged_reasons=logged, replayed_reasons=replayed,
                        same_reasons=logged == replayed, explanation=explanation.as_dict())
