"""What goes into the audit log and what comes back out of it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

Detector = Literal["transactions", "trade"]
DETECTORS = frozenset(get_args(Detector))
#: ``str(uuid.UUID(...))``: lowercase hex in groups of 8-4-4-4-12.
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_LINES = re.compile(f"(?:{_UUID_TEXT.pattern}\n)*")


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """One scoring decision to log; ``record`` is the raw input record as the scorer saw it.

    ``decision_id`` (canonical uuid text) may be chosen by the caller, else the log makes one.
    """

    request_id: str
    detector: Detector
    model_name: str
    model_version: str
    record: Mapping[str, Any]
    score: float
    threshold: float
    flagged: bool
    key_id: str | None = None
    run_id: str | None = None
    features_version: str | None = None
    explanation: Mapping[str, Any] | None = None
    decision_id: str | None = None

    def __post_init__(self) -> None:
        _check(self.detector, [self.score], self.threshold,
               [] if self.decision_id is None else [self.decision_id])


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """The decisions of one request by one model, field by field: what they share once, the
    rest one entry per decision (the scoring path logs these: no object per decision).

    ``record_texts`` are the canonical JSON texts of the input records as the scorer saw them
    (:func:`~illicitflows.audit.canonical.canonical_json` or ``frame_texts``: stored and
    hashed as given); ``decision_ids`` canonical uuid text.
    """

    request_id: str
    detector: Detector
    model_name: str
    model_version: str
    threshold: float
    decision_ids: Sequence[str]
    record_texts: Sequence[str]
    scores: Sequence[float]
    flagged: Sequence[bool]
    explanations: Sequence[Mapping[str, Any] | None]
    key_id: str | None = None
    run_id: str | None = None
    features_version: str | None = None

    def __post_init__(self) -> None:
        sizes = {len(self.record_texts), len(self.scores), len(self.flagged),
                 len(self.explanations)}
        if sizes != {len(self.decision_ids)}:
            raise ValueError("a batch needs one record, score, flag and explanation per "
                             f"decision id: sizes {sorted(sizes)} for "
                             f"{len(self.decision_ids)} id(s)")
        _check(self.detector, self.scores, self.threshold, self.decision_ids)


def _check(detector: str, scores: Sequence[float], threshold: float,
           decision_ids: Sequence[str]) -> None:
    """Reject an unknown detector, a non-finite score or threshold, a malformed decision id."""
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {sorted(DETECTORS)}, got {detector!r}")
    if not (math.isfinite(threshold) and all(map(math.isfinite, scores))):
        raise ValueError("score and threshold must be finite numbers")
    if _all_uuid_texts(decision_ids):
        return
    for decision_id in decision_ids:
        if not _is_uuid_text(decision_id):
            raise ValueError(f"decision_id must be lowercase uuid text, got {decision_id!r}")


def _all_uuid_texts(texts: Sequence[str]) -> bool:
    """Whether every one is uuid text: one match over them all, one per line (the length
    rules out a text of two lines)."""
    if not all(type(text) is str for text in texts):
        return False
    lines = "\n".join(texts) + "\n"
    return len(lines) == 37 * len(texts) and _UUID_LINES.fullmatch(lines) is not None


def _is_uuid_text(text: str) -> bool:
    return isinstance(text, str) and _UUID_TEXT.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A logged decision: its input, chain position, timestamp and hashes."""

    decision_id: str
    seq: int
    request_id: str
    created_at: str
    key_id: str | None
    detector: Detector
    model_name: str
    model_version: str
    run_id: str | None
    features_version: str | None
    record: dict[str, Any]
    record_sha256: str
    score: float
    threshold: float
    flagged: bool
    explanation: dict[str, Any] | None
    prev_hash: str
    row_hash: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query, with the total number of matching decisions."""

    items: list[StoredDecision]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of a chain verification; names the first bad row when ``ok`` is false."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    first_bad_decision_id: str | None
    problem: str
    head_hash: str
    #: How many signed positions (checkpoints) the chain was checked against.
    anchors: int = 0
