"""The MLflow model registry: register a detector as ``challenger``, load by alias or version,
and promote to ``champion`` only through the metric gate (or a recorded forced override)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from illicitflows.modeling.detector import Detector
from illicitflows.tracking.pyfunc import ARTIFACT_KEY, DetectorPyfunc

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_PATH = "model"


def model_name(domain: str) -> str:
    return f"illicitflows-{domain}"


def log_and_register(detector: Detector) -> ModelVersion:
    """Log the detector as a pyfunc model in the active run, register it, alias ``challenger``."""
    name = model_name(detector.domain)
    with tempfile.TemporaryDirectory() as tmp:
        folder = detector.save(Path(tmp) / "detector")
        info = mlflow.pyfunc.log_model(name=MODEL_PATH, python_model=DetectorPyfunc(),
                                       artifacts={ARTIFACT_KEY: str(folder)},
                                       registered_model_name=name)
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return client.get_model_version(name, version)


def resolve_version(domain: str, ref: str) -> ModelVersion:
    """A model version by alias (``champion``) or number (``3``), with a clear error."""
    name = model_name(domain)
    client = MlflowClient()
    try:
        if ref.isdigit():
            return client.get_model_version(name, ref)
        return client.get_model_version_by_alias(name, ref)
    except MlflowException as error:
        raise LookupError(f"registered model {name!r} has no version or alias {ref!r} at "
                          f"{mlflow.get_tracking_uri()}") from error


def load_detector(domain: str, ref: str = CHAMPION) -> tuple[Detector, ModelVersion]:
    """Download and load a registered detector natively (not through pyfunc)."""
    version = resolve_version(domain, ref)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{version.name}/{version.version}")
    return Detector.load(Path(local) / "artifacts" / ARTIFACT_KEY), version


@dataclass
class PromotionDecision:
    """What ``promote`` did and why."""

    promoted: bool
    reason: str
    challenger: str
    champion: str | None


def promote(domain: str, metric: str, force: bool = False,
            reason: str | None = None) -> PromotionDecision:
    """Move ``champion`` to the challenger when it beats the champion on the same test data.

    Both runs must have logged the same data fingerprint and split (so their test metrics
    come from the same records); otherwise only ``force`` with a reason promotes.
    """
    client = MlflowClient()
    name = model_name(domain)
    challenger = resolve_version(domain, CHALLENGER)
    try:
        champion: ModelVersion | None = resolve_version(domain, CHAMPION)
    except LookupError:
        champion = None
    if champion is not None and champion.version == challenger.version:
        return PromotionDecision(False, "challenger is already the champion",
                                 challenger.version, champion.version)
    if force:
        if not reason:
            raise ValueError("--force needs --reason: forced promotions are recorded")
        verdict = PromotionDecision(True, f"forced: {reason}", challenger.version,
                                    champion.version if champion else None)
    else:
        verdict = _gate(client, metric, challenger, champion)
    if verdict.promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
        client.set_model_version_tag(name, challenger.version, "promotion", verdict.reason)
    return verdict


def _gate(client: MlflowClient, metric: str, challenger: ModelVersion,
          champion: ModelVersion | None) -> PromotionDecision:
    if champion is None:
        return PromotionDecision(True, "first champion", challenger.version, None)
    new_run, old_run = client.get_run(challenger.run_id), client.get_run(champion.run_id)
    same = ("data_fingerprint", "split")
    if any(new_run.data.tags.get(k) != old_run.data.tags.get(k) for k in same):
        return PromotionDecision(False, "challenger and champion were tested on different data "
                                 "(data fingerprint or split differ); retrain on the same data "
                                 "or use --force --reason", challenger.version, champion.version)
    key = f"test_{metric}"
    new, old = new_run.data.metrics.get(key), old_run.data.metrics.get(key)
    if new is None or old is None:
        return PromotionDecision(False, f"metric {key} missing on a run", challenger.version,
                                 champion.version)
    if new > old:
        return PromotionDecision(True, f"{key} {new:.4f} > champion's {old:.4f}",
                                 challenger.version, champion.version)
    return PromotionDecision(False, f"{key} {new:.4f} does not beat champion's {old:.4f}",
                             challenger.version, champion.version)
