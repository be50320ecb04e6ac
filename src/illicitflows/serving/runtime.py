"""What a running service holds: the scorers of the loaded champions, the audit log, the API
keys and the settings. Models come from the MLflow registry into the BentoML model store."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import bentoml
import pandas as pd

from illicitflows.access.keys import KeyStore
from illicitflows.audit.canonical import frame_texts
from illicitflows.audit.checkpoints import start_checkpoints
from illicitflows.audit.models import DecisionBatch
from illicitflows.audit.store import AuditLog
from illicitflows.audit.writer import AuditWriter
from illicitflows.heap import freeze_loaded
from illicitflows.modeling.detector import Detector
from illicitflows.serving.engine import SCORERS, Decision, ModelRef, Scorer
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.recovery import restore_history
from illicitflows.settings import database_url
from illicitflows.tracking.registry import CHAMPION, load_detector
from illicitflows.tracking.setup import configure

log = logging.getLogger("illicitflows.serving")
DETECTORS = ("transactions", "trade")


@dataclass
class Settings:
    """Service settings, from environment variables (``ILLICITFLOWS_*``)."""

    tracking_uri: str | None = None
    model_refs: dict[str, str] = field(default_factory=lambda: dict.fromkeys(DETECTORS,
                                                                             CHAMPION))
    history_url: str | None = None
    audit_url: str | None = None
    keys_url: str | None = None
    max_records: int = 10_000
    #: ``process``: a child process appends to the audit log while the request goes on
    #: (:mod:`illicitflows.audit.writer`); ``inline``: the request appends itself.
    audit_writer: str = "process"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            tracking_uri=env.get("ILLICITFLOWS_TRACKING_URI") or None,
            model_refs={d: env.get(f"ILLICITFLOWS_{d.upper()}_MODEL", CHAMPION)
                        for d in DETECTORS},
            history_url=env.get("ILLICITFLOWS_HISTORY_URL") or None,
            audit_url=env.get("ILLICITFLOWS_AUDIT_URL") or None,
            keys_url=env.get("ILLICITFLOWS_KEYS_URL") or None,
            max_records=int(env.get("ILLICITFLOWS_MAX_RECORDS", "10000")),
            audit_writer=env.get("ILLICITFLOWS_AUDIT_WRITER", "process"),
        )


def import_to_bento_store(detector: Detector, model: ModelRef) -> Detector:
    """Put the detector in the BentoML model store, tagged with its MLflow version and run id,
    and load it back from there (reusing the stored copy when this run is already imported).

    The run id is in the tag because the store is the machine's (``BENTOML_HOME``) while version
    numbers are a registry's: another registry's version 1 (an earlier demo, say) must not be
    taken for this one."""
    tag = f"{model.name}:mlflow-v{model.version}-{model.run_id}".lower()
    try:
        stored = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        labels = {"mlflow_version": model.version, "mlflow_run_id": model.run_id}
        with bentoml.models.create(tag, labels=labels) as stored:
            detector.save(stored.path)
    return Detector.load(stored.path)


class Runtime:
    """The loaded state of the service; ``ready`` once every detector is loaded."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.audit = AuditLog(self.settings.audit_url)
        if self.settings.audit_writer not in ("process", "inline"):
            raise ValueError("ILLICITFLOWS_AUDIT_WRITER must be 'process' or 'inline', got "
                             f"{self.settings.audit_writer!r}")
        self.writer = (AuditWriter(self.audit.url) if self.settings.audit_writer == "process"
                       else None)
        self.keys = KeyStore(self.settings.keys_url)
        #: Signed checkpoints of the log's head, when $ILLICITFLOWS_CHECKPOINT_KEY names a key.
        self.checkpoints = start_checkpoints(self.audit)
        self.scorers: dict[str, Scorer] = {}
        self.problems: dict[str, str] = {}

    @property
    def ready(self) -> bool:
        return all(d in self.scorers for d in DETECTORS)

    def history_url(self) -> str:
        return self.settings.history_url or database_url("history")

    def load(self) -> None:
        """Load every detector from the registry (again: only versions that changed); one clear
        log line per missing one. Then what is loaded is frozen out of the garbage collector:
        models, feature state and libraries live as long as the service, and a full collection
        scanning them cost a request about 0.1 to 0.4 s every fifteen 1,000-record requests."""
        configure(self.settings.tracking_uri)
        for domain in DETECTORS:
            ref = self.settings.model_refs[domain]
            try:
                detector, version = load_detector(domain, ref)
            except LookupError as error:
                self.problems[domain] = str(error)
                log.error("not ready: %s detector missing: %s", domain, error)
                continue
            model = ModelRef(version.name, str(version.version), version.run_id)
            current = self.scorers.get(domain)
            if current is not None and current.model == model:
                continue
            detector = import_to_bento_store(detector, model)
            self.add_scorer(detector, model)
        freeze_loaded()

    def add_scorer(self, detector: Detector, model: ModelRef) -> Scorer:
        """Serve ``detector`` (its history store is shared by all versions of its domain). The
        first time a domain loads, its history catches up with the audit log."""
        domain = detector.domain
        store = HistoryStore(self.history_url(), domain)
        kind = SCORERS[domain]
        if domain not in self.scorers:
            restored = restore_history(store, self.audit, domain, kind.id_column,
                                       kind.time_column)
            if restored:
                log.warning("%s history lacked %d logged decision(s): restored from the audit "
                            "log", domain, restored)
        scorer = kind(detector, model, store)
        self.scorers[domain] = scorer
        self.problems.pop(domain, None)
        log.info("loaded %s %s version %s", domain, model.name, model.version)
        return scorer

    def retire(self, domain: str, problem: str) -> None:
        """Take a detector out of service (not ready) after its state was lost; the next load
        restores its history from the audit log and serves it again."""
        self.scorers.pop(domain, None)
        self.problems[domain] = problem
        log.error("not ready: %s detector retired: %s", domain, problem)

    def close(self) -> None:
        """Stop the audit writer, sign a last checkpoint and release the audit log's
        connections."""
        if self.writer is not None:
            self.writer.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.audit.close()

    def audit_sink(self, scorer: Scorer, request_id: str, key_id: str | None) -> AuditSink:
        """Where a request's decisions are durably logged."""
        return AuditSink(self, scorer, request_id, key_id)



@dataclass
class AuditSink:
    """A request's :class:`~illicitflows.serving.engine.DecisionLog`: with a writer process,
    the records go to it before they are scored (it writes their canonical texts) and the
    decisions after (the scorer then waits for its commit); without one, the texts are written
    here and the decisions appended at once."""

    runtime: Runtime
    scorer: Scorer
    request_id: str
    key_id: str | None
    decision_ids: list[str] | None = None
    records: pd.DataFrame | None = None
    record_texts: list[str] | None = None

    def prepare(self, decision_ids: list[str], records: pd.DataFrame) -> None:
        if self.runtime.writer is not None:
            self.runtime.writer.prepare(decision_ids, records)
        self.decision_ids, self.records = decision_ids, records

    def texts(self) -> list[str]:
        assert self.records is not None
        self.record_texts = (self.runtime.writer.texts() if self.runtime.writer is not None
                             else frame_texts(self.records))
        return self.record_texts

    def log(self, decisions: list[Decision]) -> Callable[[], None] | None:
        try:
            batch = self.batch(decisions)
        except BaseException:  # never handed over: the writer is free again
            self.abandon()
            raise
        if self.runtime.writer is not None:
            return self.runtime.writer.submit(batch)
        self.runtime.audit.log_batch(batch)
        return None

    def abandon(self) -> None:
        if self.runtime.writer is not None:
            self.runtime.writer.abandon()

    def batch(self, decisions: list[Decision]) -> DecisionBatch:
        """The audit log's view of the request's decisions (all scored with the scorer's
        threshold; ids and records the prepared lists themselves, in the same order)."""
        scorer, decision_ids, record_texts = self.scorer, self.decision_ids, self.record_texts
        assert decision_ids is not None and record_texts is not None  # prepared, texts read
        return DecisionBatch(
            request_id=self.request_id, detector=scorer.detector.domain,
            model_name=scorer.model.name, model_version=scorer.model.version,
            threshold=scorer.detector.threshold, key_id=self.key_id, run_id=scorer.model.run_id,
            features_version=scorer.detector.builder.version,
            decision_ids=decision_ids, record_texts=record_texts,
            scores=[d.score for d in decisions],
            flagged=[d.flagged for d in decisions],
            explanations=[d.explanation.as_dict() if d.explanation else None
                          for d in decisions])
