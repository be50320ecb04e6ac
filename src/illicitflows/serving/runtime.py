"""What a running service holds: the scorers of the loaded champions, the audit log, the API
keys and the settings. Models come from the MLflow registry into the BentoML model store."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import bentoml

from illicitflows.access.keys import KeyStore
from illicitflows.audit.checkpoints import start_checkpoints
from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.requestlog import RequestLog
from illicitflows.audit.reviews import ReviewLog
from illicitflows.audit.store import AuditLog
from illicitflows.audit.writer import AuditWriter
from illicitflows.heap import freeze_loaded
from illicitflows.modeling.detector import Detector
from illicitflows.serving.arrival import Arrival
from illicitflows.serving.batching import BatchLimits, MicroBatcher
from illicitflows.serving.engine import SCORERS, ModelRef, Scorer
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
    #: Allowed lateness and clock skew of arriving records (:mod:`.arrival`).
    arrival: Arrival = field(default_factory=Arrival)
    #: How requests are gathered into micro-batches (:mod:`.batching`).
    batching: BatchLimits = field(default_factory=BatchLimits)
    #: Request limits: a body's bytes (counted as it arrives: 413 before parsing), a text
    #: value's characters and a number's magnitude (422 naming the record and field).
    max_body_bytes: int = 16 * 2**20
    max_text_chars: int = 256
    max_number: float = 1e15
    #: How long an API key's row may be reused: a revocation takes effect within this.
    key_cache_seconds: float = 5.0
    #: Most stored transfers an account review reads (its period and the feature horizon
    #: before it); a longer period answers 422 (the command line reviews files of any size).
    max_review_transfers: int = 500_000

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        defaults = cls()
        return cls(
            tracking_uri=env.get("ILLICITFLOWS_TRACKING_URI") or None,
            model_refs={d: env.get(f"ILLICITFLOWS_{d.upper()}_MODEL", CHAMPION)
                        for d in DETECTORS},
            history_url=env.get("ILLICITFLOWS_HISTORY_URL") or None,
            audit_url=env.get("ILLICITFLOWS_AUDIT_URL") or None,
            keys_url=env.get("ILLICITFLOWS_KEYS_URL") or None,
            max_records=_positive("ILLICITFLOWS_MAX_RECORDS", defaults.max_records, int),
            audit_writer=env.get("ILLICITFLOWS_AUDIT_WRITER", "process"),
            arrival=Arrival.from_env(),
            batching=BatchLimits(
                max_wait_s=float(env.get("ILLICITFLOWS_BATCH_WAIT_MS", "2")) / 1000,
                max_records=int(env.get("ILLICITFLOWS_BATCH_RECORDS", "2000"))),
            max_body_bytes=_positive("ILLICITFLOWS_MAX_BODY_BYTES", defaults.max_body_bytes,
                                     int),
            max_text_chars=_positive("ILLICITFLOWS_MAX_TEXT_CHARS", defaults.max_text_chars,
                                     int),
            max_number=_positive("ILLICITFLOWS_MAX_NUMBER", defaults.max_number, float),
            key_cache_seconds=_positive("ILLICITFLOWS_KEY_CACHE_SECONDS",
                                        defaults.key_cache_seconds, float, zero=True),
            max_review_transfers=_positive("ILLICITFLOWS_MAX_REVIEW_TRANSFERS",
                                           defaults.max_review_transfers, int),
        )


def _positive(name: str, default: float, kind: type[int] | type[float],
              zero: bool = False) -> Any:
    """The number in environment variable ``name`` (``default`` when unset): finite and above
    zero (or zero when ``zero``), else a ValueError naming the variable."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} "
                         f"{kind.__name__}, got {text!r}")
    return value


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
        self.dispositions = DispositionLog(self.audit.url)
        self.reviews = ReviewLog(self.audit.url)
        if self.settings.audit_writer not in ("process", "inline"):
            raise ValueError("ILLICITFLOWS_AUDIT_WRITER must be 'process' or 'inline', got "
                             f"{self.settings.audit_writer!r}")
        self.writer = (AuditWriter(self.audit.url) if self.settings.audit_writer == "process"
                       else None)
        self.keys = KeyStore(self.settings.keys_url)
        #: Signed checkpoints of the log's head, when $ILLICITFLOWS_CHECKPOINT_KEY names a key.
        self.checkpoints = start_checkpoints(self.audit)
        self.scorers: dict[str, Scorer] = {}
        self.batchers: dict[str, MicroBatcher] = {}
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
            try:
                self.add_scorer(detector, model)
            except Exception as error:  # one detector's failure leaves the other serving
                self.problems[domain] = f"{type(error).__name__}: {error}"
                log.exception("not ready: %s detector could not be loaded", domain)
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
        scorer = kind(detector, model, store, self.settings.arrival)
        self.scorers[domain] = scorer
        previous = self.batchers.get(domain)
        self.batchers[domain] = MicroBatcher(scorer, self.request_log, self.settings.batching)
        if previous is not None:
            previous.close()
        self.problems.pop(domain, None)
        log.info("loaded %s %s version %s", domain, model.name, model.version)
        return scorer

    def retire(self, domain: str, problem: str) -> None:
        """Take a detector out of service (not ready) after its state was lost; the next load
        restores its history from the audit log and serves it again."""
        self.scorers.pop(domain, None)
        batcher = self.batchers.pop(domain, None)
        if batcher is not None:
            batcher.stop(problem)
        self.problems[domain] = problem
        log.error("not ready: %s detector retired: %s", domain, problem)

    def close(self) -> None:
        """Stop the scoring threads and the audit writer, sign a last checkpoint and release
        the audit log's connections."""
        for batcher in self.batchers.values():
            batcher.close()
        if self.writer is not None:
            self.writer.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.audit.close()
        self.dispositions.close()
        self.reviews.close()

    def request_log(self) -> RequestLog:
        """Where one micro-batch's decisions are durably logged."""
        return RequestLog(self.audit, self.writer)

    def batcher(self, domain: str) -> MicroBatcher:
        """The queue of ``domain``'s scorer (:class:`KeyError` when it is not loaded)."""
        return self.batchers[domain]
