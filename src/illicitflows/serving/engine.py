"""The scoring engine, without HTTP: validate records, build features against the history
state, score, explain, hand the decisions to the audit log, then append the history, roll up,
find networks (and render the answer) while the log writes; nothing is returned before the log
has committed. The HTTP service, offline scoring and tests all call this."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from illicitflows.audit.canonical import canonical_json, frame_texts, plain_values
from illicitflows.audit.models import DecisionBatch, StoredDecision
from illicitflows.explain.reasons import DEFAULT_TOP_K, Explanation, Reason, explain
from illicitflows.ids import uuid7_texts
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.domains import DOMAINS
from illicitflows.record_validation import is_null, parse_records
from illicitflows.serving.arrival import Arrival, feature_times, time_order
from illicitflows.serving.history import CHUNK_ROWS, ROW_COLUMNS, HistoryStore
from illicitflows.serving.laps import Laps
from illicitflows.serving.networks import Edge, FlaggedGraph
from illicitflows.serving.rollups import roll_up
from illicitflows.validation import DUPLICATE, LateRecordError

RISK_BANDS = ("low", "medium", "high", "critical")
log = logging.getLogger("illicitflows.serving")


class InputError(ValueError):
    """Bad records: each issue names the record index, the field and the reason."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        self.issues = issues
        first = issues[0] if issues else {}
        super().__init__(f"{len(issues)} problem(s); first: record {first.get('index')}, "
                         f"field {first.get('field')}: {first.get('reason')}")


class ConflictError(ValueError):
    """Records whose ids were decided before with other content: each issue names the record
    index, the id field and the decision that holds the id."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        self.issues = issues
        first = issues[0]
        super().__init__(f"{len(issues)} record id(s) already decided with other content; "
                         f"first: record {first['index']}: {first['reason']}")


@dataclass(frozen=True)
class ModelRef:
    """Which registered model version a scorer runs."""

    name: str
    version: str
    run_id: str


@dataclass(slots=True)
class Decision:
    """One scored record, ready for the audit log and the response (``record_json``: the
    record's canonical JSON text, as the history and the audit log store it)."""

    decision_id: str
    record_id: str
    record_json: str
    score: float
    threshold: float
    flagged: bool
    explanation: Explanation | None
    #: Decided by an earlier request (a retry): the original decision, not scored again.
    repeat: bool = False


@dataclass
class ScoredBatch:
    """The decisions of one request plus its roll-ups (and networks for transactions), and
    the answer's body when the caller asked the scorer to render it."""

    decisions: list[Decision]
    rollups: list[dict[str, Any]]
    networks: list[dict[str, Any]] = field(default_factory=list)
    rendered: bytes | None = None


@runtime_checkable
class DecisionLog(Protocol):
    """One commit of decisions to the audit log, as the engine drives it:
    :class:`illicitflows.audit.requestlog.RequestLog` (its lifecycle: begin, texts, attach,
    commit, or abandon)."""

    def begin(self, decision_ids: Sequence[str], records: pd.DataFrame) -> None:
        """The decision ids and typed records, in log order, before they are scored."""

    def texts(self) -> list[str]:
        """The records' canonical JSON (:func:`~illicitflows.audit.canonical.frame_texts`):
        what the history and the log store."""

    def attach(self, batches: Sequence[DecisionBatch]) -> None:
        """The decisions, one batch per request: the commit starts. If it raises, nothing
        was logged."""

    def commit(self) -> None:
        """Wait until the decisions are durably logged; raises when they were not."""

    def abandon(self) -> None:
        """Scoring failed before the decisions were attached."""

    def recall(self, decision_ids: Sequence[str]) -> list[StoredDecision]:
        """Logged decisions by id (the originals of a retried request's records)."""


@dataclass
class ScoreRequest:
    """One scoring request as the engine takes it (alone or in a micro-batch with others):
    its records, who sent it and how to answer it; ``result`` or ``error`` once scored."""

    records: list[dict[str, Any]]
    request_id: str = "request"
    key_id: str | None = None
    explain_all: bool = False
    top_k: int = DEFAULT_TOP_K
    #: The answer's body, built from the request's decisions while the log commits.
    render: Callable[[ScoredBatch], bytes] | None = None
    laps: Laps = field(default_factory=Laps)
    result: ScoredBatch | None = None
    error: Exception | None = None

    def outcome(self) -> ScoredBatch:
        """The scored batch, or the error that refused the request."""
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the request was not scored"
        return self.result


@dataclass
class _Taken:
    """A request admitted to a micro-batch: its new records in time order (index: position
    in the request) and the original decisions of its retried records, by position."""

    request: ScoreRequest
    frame: pd.DataFrame
    repeats: dict[int, Decision]


class HistoryWriteError(RuntimeError):
    """The history store failed after the feature state took the records. The scorer must be
    replaced (the service's reload restores the history from the audit log first)."""

    def __init__(self, domain: str, error: Exception, log_error: Exception | None) -> None:
        self.domain = domain
        logged = ("were logged" if log_error is None
                  else f"were not logged either ({log_error})")
        super().__init__(f"{domain} history store failed ({error}); the request's decisions "
                         f"{logged}")


def _failure(wait: Callable[[], None]) -> Exception | None:
    """Wait for a log; its error, or None when it succeeded."""
    try:
        wait()
    except Exception as error:
        return error
    return None


@dataclass
class TakenHistory:
    """Stored history fed to a feature state (:func:`take_history`): the typed records taken
    (arrival order), their stored rows, their features, the clock after them, and the rows
    skipped (each named with its position, field and reason)."""

    frame: pd.DataFrame
    rows: pd.DataFrame
    features: pd.DataFrame
    clock: pd.Timestamp | None
    skipped: list[str]


def take_history(detector: Detector, stored: pd.DataFrame, state: Any,
                 clock: pd.Timestamp | None = None,
                 seen: set[str] | None = None) -> TakenHistory:
    """The one way stored history (:meth:`HistoryStore.chunks`) becomes feature state, for a
    scorer's rebuild and an auditor's replay alike: the rows in arrival order, each at its
    feature time (:mod:`~illicitflows.serving.arrival`). Rows that no longer validate (e.g.
    an id stored twice by a retry before retries were recognised) are skipped and reported:
    data the service once accepted never keeps a detector out of service.

    A history taken in chunks passes each chunk the ``clock`` the previous one left and one
    ``seen`` set of the ids met so far (updated here), so an id stored again in a later chunk
    is skipped as in one pass."""
    kind = SCORERS[detector.domain]
    if stored.empty:
        return TakenHistory(stored, stored, stored, clock, [])
    raw = stored.drop(columns=list(ROW_COLUMNS))
    schema = DOMAINS[detector.domain].schema
    absent = [f.name for f in schema.fields if f.name not in raw.columns]
    result = schema.parse(raw.assign(**dict.fromkeys(absent)))
    frame, errors = result.frame, result.errors[["row", "column", "reason"]]
    if seen is not None:
        ids = frame[kind.id_column]
        again = np.flatnonzero(ids.notna().to_numpy()
                               & ids.astype(str).isin(seen).to_numpy()).tolist()
        seen.update(ids[ids.notna()].astype(str).tolist())
        if again:
            earlier = pd.DataFrame({"row": again, "column": kind.id_column,
                                    "reason": DUPLICATE})
            errors = (pd.concat([errors, earlier], ignore_index=True)
                      .drop_duplicates().sort_values(["row", "column"], kind="stable"))
    skipped = []
    if len(errors):
        skipped = [f"history row {stored['_seq'].iloc[row]}, field {column}: {reason}"
                   for row, column, reason in errors.itertuples(index=False)]
        kept = ~np.isin(np.arange(len(frame)), errors["row"].to_numpy())
        frame, stored = frame[kept], stored[kept]
    times = feature_times(frame[kind.time_column], clock)
    features = detector.builder.transform(frame.assign(**{kind.time_column: times}), state)
    return TakenHistory(frame, stored, features, times.iloc[-1] if len(times) else clock,
                        skipped)


def feed_history(detector: Detector, chunks: Iterable[pd.DataFrame], state: Any,
                 on_chunk: Callable[[TakenHistory], None] | None = None) -> TakenHistory:
    """Stored history given in chunks (:meth:`HistoryStore.chunks`) taken into ``state`` one
    chunk at a time (:func:`take_history`), as one pass over it would; ``on_chunk`` sees each
    chunk's result. Returns the clock after them and every row skipped (the frames empty:
    no chunk is kept)."""
    clock, seen, skipped = None, set(), []
    for stored in chunks:
        taken = take_history(detector, stored, state, clock, seen)
        clock = taken.clock
        skipped += taken.skipped
        if on_chunk is not None and len(taken.frame):
            on_chunk(taken)
    empty = pd.DataFrame()
    return TakenHistory(empty, empty, empty, clock, skipped)


def logged_decision(stored: StoredDecision, id_column: str) -> Decision:
    """A decision as the audit log holds it (what a retry of its record is answered with)."""
    explanation = stored.explanation
    return Decision(
        stored.decision_id, str(stored.record[id_column]), canonical_json(stored.record),
        stored.score, stored.threshold, stored.flagged,
        None if explanation is None else Explanation(
            explanation["base_value"], explanation["contributions"],
            [Reason(**reason) for reason in explanation["reasons"]]))


def risk_bands(scores: Sequence[float] | np.ndarray, threshold: float) -> list[str]:
    """Each score's band: low below half the threshold, medium below it, high up to halfway
    to 1, else critical."""
    edges = np.array([threshold / 2, threshold, (1 + threshold) / 2])
    return [RISK_BANDS[band] for band in np.searchsorted(edges, scores, side="right").tolist()]


def decision_columns(detector: Detector, features: pd.DataFrame) -> dict[str, Any]:
    """The batch scoring columns of featured records: score, flag, threshold, risk band and
    the flagged ones' top reasons (``family: sentence | ...``), as offline and distributed
    scoring write them."""
    scores = detector.score_features(features)
    flagged = scores >= detector.threshold
    reasons = np.full(len(features), "", dtype=object)
    for row, item in zip(np.flatnonzero(flagged), explain(detector, features[flagged]),
                         strict=True):
        reasons[row] = " | ".join(f"{r.family}: {r.sentence}" for r in item.reasons)
    return {"score": scores, "flagged": flagged, "threshold": detector.threshold,
            "risk_band": risk_bands(scores, detector.threshold), "reasons": reasons}


class Scorer(ABC):
    """Scores one domain's records with one detector and a durable history state."""

    id_column = "id"
    time_column = "timestamp"

    def __init__(self, detector: Detector, model: ModelRef, store: HistoryStore,
                 arrival: Arrival | None = None, chunk_rows: int = CHUNK_ROWS) -> None:
        self.detector = detector
        self.model = model
        self.store = store
        self.arrival = (arrival or Arrival()).for_resolution(self.resolution_s())
        #: History rows read at a time by :meth:`rebuild`.
        self.chunk_rows = chunk_rows
        #: The newest event time taken (:mod:`~illicitflows.serving.arrival`), None when none.
        self.clock: pd.Timestamp | None = None
        self.domain = DOMAINS[detector.domain]
        self.lock = threading.Lock()
        self.rebuild()

    # -- state -----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Rebuild the feature state from the stored history, in arrival order, ``chunk_rows``
        rows at a time (the history is never held at once). Rows that no longer pass
        validation (e.g. a second row of one id, written before retries were recognised) are
        skipped and reported (``skipped``): a detector never stays out of service over data
        it once accepted."""
        self.state = self.detector.builder.scoring_state()
        #: Record id -> (decision id, hash of its canonical text) of the records taken.
        self.decided: dict[str, tuple[str, int]] = {}
        taken = feed_history(self.detector,
                             self.store.chunks(since=self.history_since(), rows=self.chunk_rows),
                             self.state, self._took)
        self.clock, self.skipped = taken.clock, taken.skipped
        if taken.skipped:
            log.warning("%s history: %d row(s) skipped in the rebuild; first: %s",
                        self.detector.domain, len(taken.skipped), taken.skipped[0])

    def _took(self, taken: TakenHistory) -> None:
        """One chunk of the rebuild taken: what the scorer keeps beside the feature state."""
        self.after_rebuild(taken.frame, taken.features, taken.rows["_flagged"].to_numpy(bool))
        originals = zip(taken.rows["_decision_id"].tolist(),
                        map(hash, taken.rows["_record"].tolist()), strict=True)
        self.decided.update(zip(map(str, taken.frame[self.id_column].tolist()), originals,
                                strict=True))

    def resolution_s(self) -> float:
        """The time resolution of this detector's records (seconds): which arrival rules it
        takes (:meth:`Arrival.for_resolution`)."""
        return 1.0

    def _at_feature_times(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The records (in arrival order) with their feature times in place of their event
        times, as the features read them; moves the clock past them."""
        times = frame[self.time_column]
        if times.empty:
            return frame
        at = feature_times(times, self.clock)
        self.clock = at.iloc[-1]
        return frame.assign(**{self.time_column: at})

    def _in_time_order(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A request's records in time order (index: their position in the request), or
        :class:`InputError` naming those too late for the clock or in the future."""
        ordered = frame.iloc[time_order(frame[self.time_column])]
        issues = self.arrival.issues(ordered[self.time_column], self.clock, self.time_column)
        if issues:
            raise InputError(issues)
        return ordered

    def history_since(self) -> str | None:
        return None

    @abstractmethod
    def after_rebuild(self, frame: pd.DataFrame, features: pd.DataFrame,
                      flagged: np.ndarray) -> None:
        """Restore what a scorer keeps beyond the feature state (e.g. flagged edges)."""

    # -- scoring ---------------------------------------------------------------------------
    def score(self, records: list[dict[str, Any]], log: DecisionLog,
              explain_all: bool = False, top_k: int = DEFAULT_TOP_K, laps: Laps | None = None,
              render: Callable[[ScoredBatch], bytes] | None = None,
              request_id: str = "request", key_id: str | None = None) -> ScoredBatch:
        """Score one request on its own: a micro-batch of one (:meth:`score_batch`)."""
        request = ScoreRequest(records, request_id, key_id, explain_all, top_k, render,
                               laps or Laps())
        self.score_batch([request], log)
        return request.outcome()

    def score_batch(self, requests: list[ScoreRequest],
                    log: DecisionLog) -> list[ScoreRequest]:
        """Score requests that arrived together as one micro-batch: validation, features,
        predictions and explanations run once for all of them, their decisions go to ``log``
        in one commit, and each request gets exactly what scoring it alone, in this order,
        would give (its ``result``, or its ``error``: bad records, too late, a conflicting
        id). Returns once the log has committed. The history is appended, the roll-ups built
        and each answer rendered while the log commits. Returns the requests left for the
        next micro-batch: those with a record id that an earlier one of this batch carries
        (a retry sent before the original was answered)."""
        laps = Laps()
        for request in requests:
            request.laps.lap("queue")
        frames = self._validated(requests)
        laps.lap("validate")
        with self.lock:
            laps.lap("queue")
            taken, deferred = self._admitted(requests, frames, log)
            laps.lap("admit")
            try:
                self._score_taken(taken, log, laps)
            except Exception as error:  # nothing of the micro-batch's new records is kept
                for item in taken:
                    if len(item.frame):
                        item.request.result, item.request.error = None, error
        for request in requests:
            request.laps.merge(laps)
        return deferred

    def validate(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Typed canonical records (a new id where one is missing), or :class:`InputError`
        listing every bad record."""
        request = ScoreRequest(records)
        frame = self._validated([request])[0]
        if request.error is not None:
            raise request.error
        assert frame is not None
        return frame

    def _validated(self, requests: list[ScoreRequest]) -> list[pd.DataFrame | None]:
        """Each request's typed records (index: position in the request; a new id where one
        is missing), validated together in one pass; a request with bad records gets an
        :class:`InputError` naming each (index, field, reason) and None here."""
        records = [record for request in requests for record in request.records]
        bounds = np.cumsum([0, *(len(request.records) for request in requests)]).tolist()
        known, new_ids = set(self.domain.schema.columns), {self.id_column: uuid7_texts}
        unknown: list[tuple[int, str]] = []
        if not known.issuperset(chain(*records)):
            unknown = [(row, key) for row, record in enumerate(records)
                       for key, value in record.items()
                       if key not in known and not is_null(value)]
            records = [{key: value for key, value in record.items() if key in known}
                       for record in records]
        result = parse_records(self.domain.schema, records, new_ids)
        errors = result.errors
        errors = errors[errors["reason"] != DUPLICATE]  # ids are unique per request only
        frames: list[pd.DataFrame | None] = []
        for request, start, stop in zip(requests, bounds, bounds[1:], strict=False):
            frame = result.frame.iloc[start:stop].set_axis(pd.RangeIndex(stop - start))
            issues = [{"index": row - start, "field": key, "reason": "unknown field"}
                      for row, key in unknown if start <= row < stop]
            if len(errors):  # (filtering a frame per request costs, while most have none)
                mine = errors[(errors["row"] >= start) & (errors["row"] < stop)]
                issues += [{"index": int(r.row) - start, "field": r.column,
                            "reason": r.reason, "value": r.value}
                           for r in mine.itertuples(index=False)]
            ids = frame[self.id_column].tolist()
            if len(set(ids)) < len(ids):
                seen: set[Any] = set()
                for row, record_id in enumerate(ids):
                    if record_id in seen and not is_null(record_id):
                        issues.append({"index": row, "field": self.id_column,
                                       "reason": DUPLICATE, "value": record_id})
                    seen.add(record_id)
            if issues:
                request.error = InputError(sorted(issues,
                                                  key=lambda i: (i["index"], i["field"])))
            frames.append(None if issues else frame)
        return frames

    def _admitted(self, requests: list[ScoreRequest], frames: list[pd.DataFrame | None],
                  log: DecisionLog) -> tuple[list[_Taken], list[ScoreRequest]]:
        """The requests taken into this micro-batch, in order, each checked as if scored
        alone after the ones before it: retried records, lateness and clock skew against the
        clock they move; and those left for the next micro-batch."""
        clock, carried, taken, deferred = self.clock, set(), [], []
        for request, frame in zip(requests, frames, strict=True):
            if frame is None:
                continue
            ids = list(map(str, frame[self.id_column].tolist()))
            if carried.intersection(ids):
                deferred.append(request)
                continue
            try:
                fresh, repeats = self._repeats(frame, ids, log, clock)
                ordered = fresh.iloc[time_order(fresh[self.time_column])]
                issues = self.arrival.issues(ordered[self.time_column], clock,
                                             self.time_column)
                if issues:
                    raise InputError(issues)
            except (InputError, ConflictError, LookupError) as error:
                request.error = error
                continue
            carried.update(ids)
            if len(ordered):
                newest = ordered[self.time_column].iloc[-1]
                clock = newest if clock is None else max(clock, newest)
            taken.append(_Taken(request, ordered, repeats))
        return taken, deferred

    def _repeats(self, frame: pd.DataFrame, ids: list[str], log: DecisionLog,
                 clock: pd.Timestamp | None) -> tuple[pd.DataFrame, dict[int, Decision]]:
        """The records not decided yet, and the original decisions (marked as repeats) of
        those decided before with the same content, by index; :class:`ConflictError` naming
        the records whose id was decided with other content. Ids are looked up before any
        arrival rule, so a retry is answered whatever its age: those of records too late for
        ``clock`` that the scorer does not hold (older than what a rebuild reads) are looked
        up in the history store."""
        self._recall_late(frame, ids, clock)
        known = [row for row, record_id in enumerate(ids) if record_id in self.decided]
        if not known:
            return frame, {}
        texts = frame_texts(frame.iloc[known])
        conflicts = [{"index": int(frame.index[row]), "field": self.id_column,
                      "reason": f"id {ids[row]!r} was decided before (decision "
                                f"{self.decided[ids[row]][0]}) with other content",
                      "value": ids[row]}
                     for row, text in zip(known, texts, strict=True)
                     if hash(text) != self.decided[ids[row]][1]]
        if conflicts:
            raise ConflictError(conflicts)
        originals = log.recall([self.decided[ids[row]][0] for row in known])
        repeats = {int(frame.index[row]): replace(logged_decision(original, self.id_column),
                                                  repeat=True)
                   for row, original in zip(known, originals, strict=True)}
        return frame.drop(index=list(repeats)), repeats

    def _recall_late(self, frame: pd.DataFrame, ids: list[str],
                     clock: pd.Timestamp | None) -> None:
        """Note in ``decided`` the records too late for ``clock`` whose id the history store
        holds at the record's time (a retry of a record older than the rebuilt history)."""
        late = np.flatnonzero(self.arrival.late(frame[self.time_column], clock)).tolist()
        late = [row for row in late if ids[row] not in self.decided]
        if not late:
            return
        times = plain_values(frame[self.time_column].iloc[late])
        found = self.store.decisions_of([ids[row] for row in late], times)
        self.decided.update((record_id, (decision_id, hash(text)))
                            for record_id, (decision_id, text) in found.items())

    def _score_taken(self, taken: list[_Taken], log: DecisionLog, laps: Laps) -> None:
        """Score the new records of the requests taken, as one frame, log them in one commit
        and answer each request (those with retried records only are answered at once)."""
        scored = [item for item in taken if len(item.frame)]
        for item in taken:
            if not len(item.frame):
                self._answer(item, item.frame, item.frame, [])
        if not scored:
            return
        frame = pd.concat([item.frame for item in scored])
        bounds = np.cumsum([0, *(len(item.frame) for item in scored)]).tolist()
        decision_ids = uuid7_texts(len(frame))
        log.begin(decision_ids, frame)
        laps.lap("records")
        try:
            decisions, features = self._decide(frame, decision_ids, scored, bounds, log, laps)
        except BaseException:
            log.abandon()
            self.rebuild()  # the feature state may hold the records: forget them
            raise
        try:
            batches = [self._logged(item.request, decisions[start:stop])
                       for item, start, stop in zip(scored, bounds, bounds[1:], strict=False)]
        except Exception:  # e.g. a non-finite score: never handed over, the log is free again
            log.abandon()
            self.rebuild()
            raise
        try:
            log.attach(batches)
        except Exception:  # nothing is stored: the feature state forgets the records
            self.rebuild()
            raise
        laps.lap("audit")
        try:
            seqs = self.store.append([d.record_json for d in decisions],
                                     [d.record_id for d in decisions],
                                     [d.decision_id for d in decisions],
                                     plain_values(frame[self.time_column]),
                                     [d.score for d in decisions], [d.flagged for d in decisions])
        except Exception as error:
            raise HistoryWriteError(self.detector.domain, error, _failure(log.commit)) from error
        laps.lap("history")
        try:
            for item, start, stop in zip(scored, bounds, bounds[1:], strict=False):
                self._answer(item, frame.iloc[start:stop], features.iloc[start:stop],
                             decisions[start:stop])
            laps.lap("rollups")
        finally:
            self._settle(log, seqs)
        laps.lap("audit")
        self.decided.update((d.record_id, (d.decision_id, hash(d.record_json)))
                            for d in decisions)

    def _decide(self, frame: pd.DataFrame, decision_ids: list[str], scored: list[_Taken],
                bounds: list[int], log: DecisionLog,
                laps: Laps) -> tuple[list[Decision], pd.DataFrame]:
        """Features, scores and explanations of the micro-batch's records (each request's
        in time order, one after the other): their decisions, with the records' canonical
        texts from the log."""
        try:
            features = self.detector.builder.transform(
                self._at_feature_times(frame.reset_index(drop=True)), self.state)
        except LateRecordError as error:
            raise InputError([{"index": None, "field": self.time_column,
                               "reason": str(error)}]) from error
        laps.lap("features")
        scores = self.detector.score_features(features)
        threshold = self.detector.threshold
        flagged = scores >= threshold
        laps.lap("predict")
        sizes = np.diff(bounds)
        wanted = flagged | np.repeat([item.request.explain_all for item in scored], sizes)
        top_k = np.repeat([item.request.top_k for item in scored], sizes)
        explanations: list[Explanation | None] = [None] * len(frame)
        for k in np.unique(top_k[wanted]).tolist():
            rows = np.flatnonzero(wanted & (top_k == k))
            for row, item in zip(rows, explain(self.detector, features.iloc[rows], k),
                                 strict=True):
                explanations[row] = item
        laps.lap("explain")
        texts = log.texts()
        decisions = [Decision(decision_id, record_id, text, s, threshold, f, e)
                     for decision_id, record_id, text, s, f, e in zip(
                         decision_ids, map(str, frame[self.id_column].tolist()),
                         texts, scores.tolist(), flagged.tolist(), explanations, strict=True)]
        laps.lap("records")
        return decisions, features

    def _logged(self, request: ScoreRequest, decisions: list[Decision]) -> DecisionBatch:
        """The audit log's view of one request's decisions."""
        return DecisionBatch(
            request_id=request.request_id, detector=self.detector.domain,
            model_name=self.model.name, model_version=self.model.version,
            threshold=self.detector.threshold, key_id=request.key_id,
            run_id=self.model.run_id, features_version=self.detector.builder.version,
            decision_ids=[d.decision_id for d in decisions],
            record_texts=[d.record_json for d in decisions],
            scores=[d.score for d in decisions], flagged=[d.flagged for d in decisions],
            explanations=[d.explanation.as_dict() if d.explanation else None
                          for d in decisions])

    def _answer(self, item: _Taken, frame: pd.DataFrame, features: pd.DataFrame,
                decisions: list[Decision]) -> None:
        """A request's result: roll-ups (and networks) of its new records, every decision in
        the order sent (retried records' originals among them), its body rendered."""
        request = item.request
        if not len(frame):  # retried records only
            request.result = ScoredBatch(decisions=[item.repeats[i] for i in sorted(item.repeats)],
                                         rollups=[])
            if request.render is not None:
                request.result.rendered = request.render(request.result)
            return
        try:
            sent = np.argsort(frame.index.to_numpy(), kind="stable")
            batch = self.assemble(frame.iloc[sent], features.iloc[sent],
                                  [decisions[i] for i in sent.tolist()])
            if item.repeats:
                made = dict(zip(frame.index.tolist(), decisions, strict=True))
                batch.decisions = [made[i] if i in made else item.repeats[i]
                                   for i in range(len(made) + len(item.repeats))]
            if request.render is not None:
                batch.rendered = request.render(batch)
            request.result = batch
        except Exception as error:  # this request's answer only
            request.error = error

    def _settle(self, log: DecisionLog, seqs: list[int]) -> None:
        """Wait until the decisions are logged; if they could not be, take their records back
        out of the history and the feature state, and raise the log's error."""
        try:
            log.commit()
        except Exception as log_error:
            try:
                self.store.remove(seqs)
            except Exception as error:  # the history keeps records that were never logged
                raise HistoryWriteError(self.detector.domain, error, log_error) from error
            self.rebuild()
            raise

    @abstractmethod
    def assemble(self, frame: pd.DataFrame, features: pd.DataFrame,
                 decisions: list[Decision]) -> ScoredBatch:
        """Roll-ups (and networks) of a scored batch; each domain defines its own."""

    @staticmethod
    def reasons_of(decisions: list[Decision]) -> list[list[dict[str, Any]]]:
        return [[r.as_dict() for r in d.explanation.reasons] if d.explanation else []
                for d in decisions]


class TransactionScorer(Scorer):
    """Payments: history bounded by the features' horizon; accounts and networks."""

    def rebuild(self) -> None:
        """Rebuild the feature state and the flagged edges (from none) from the history."""
        self.flagged = FlaggedGraph(self.horizon)
        super().rebuild()

    @property
    def horizon(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.detector.builder.config.horizon_s)

    def resolution_s(self) -> float:
        """Measured on the training data (:mod:`~illicitflows.transactions.features.scales`):
        a day for day-stamped feeds."""
        profile = getattr(self.detector.builder, "time_profile_", None)
        return 1.0 if profile is None else float(profile.resolution_s)

    def history_since(self) -> str | None:
        latest = self.store.latest_time()
        return None if latest is None else (pd.Timestamp(latest) - self.horizon).isoformat()

    def after_rebuild(self, frame: pd.DataFrame, features: pd.DataFrame,
                      flagged: np.ndarray) -> None:
        explained = explain(self.detector, features[flagged])
        rows = frame[flagged]
        self._remember([str(i) for i in rows[self.id_column].tolist()], _accounts(rows, "from"),
                       _accounts(rows, "to"), rows[self.time_column].tolist(),
                       features["amount_usd"].to_numpy()[flagged].tolist(),
                       [[r.family for r in e.reasons] for e in explained])

    def assemble(self, frame: pd.DataFrame, features: pd.DataFrame,
                 decisions: list[Decision]) -> ScoredBatch:
        reasons = self.reasons_of(decisions)
        senders, receivers = _accounts(frame, "from"), _accounts(frame, "to")
        flagged = [d.flagged for d in decisions]
        rollups = roll_up([senders, receivers], [d.score for d in decisions], flagged, reasons)
        hits = [row for row, hit in enumerate(flagged) if hit]
        if not hits:
            return ScoredBatch(decisions=decisions, rollups=rollups)
        edges = self._remember([decisions[row].record_id for row in hits],
                               [senders[row] for row in hits], [receivers[row] for row in hits],
                               frame[self.time_column].iloc[hits].tolist(),
                               features["amount_usd"].to_numpy()[hits].tolist(),
                               [[r["family"] for r in reasons[row]] for row in hits])
        return ScoredBatch(decisions=decisions, rollups=rollups,
                           networks=self.flagged.networks(edges))

    def _remember(self, ids: list[str], senders: list[str], receivers: list[str],
                  times: list[pd.Timestamp], amounts_usd: list[float],
                  families: list[list[str]]) -> list[Edge]:
        """Keep flagged edges within the horizon for network detection; returns them."""
        edges = list(map(Edge._make, zip(ids, senders, receivers, times, amounts_usd, families,
                                         strict=True)))
        self.flagged.add(edges)
        return edges


class TradeScorer(Scorer):
    """Customs declarations: party history since training; importer roll-up."""

    id_column = "declaration_id"
    time_column = "date"

    def resolution_s(self) -> float:
        """Declarations carry dates."""
        return 86_400.0

    def after_rebuild(self, frame: pd.DataFrame, features: pd.DataFrame,
                      flagged: np.ndarray) -> None:
        """Party history lives in the feature state: nothing more to restore."""

    def assemble(self, frame: pd.DataFrame, features: pd.DataFrame,
                 decisions: list[Decision]) -> ScoredBatch:
        importers = [str(importer) for importer in frame["importer_id"].tolist()]
        return ScoredBatch(decisions=decisions,
                           rollups=roll_up([importers], [d.score for d in decisions],
                                           [d.flagged for d in decisions],
                                           self.reasons_of(decisions)))


#: The scorer of each domain.
SCORERS: dict[str, type[Scorer]] = {"transactions": TransactionScorer, "trade": TradeScorer}


def _accounts(frame: pd.DataFrame, side: str) -> list[str]:
    """``bank|account`` of each record's sender or receiver (plain Python: pandas string
    operations cost milliseconds even for one record)."""
    return [f"{bank}|{account}" for bank, account in zip(
        frame[f"{side}_bank"].tolist(), frame[f"{side}_account"].tolist(), strict=True)]
