"""Which MLflow tracking server to use, and the experiment of each detector."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from illicitflows.settings import data_dir

ENV = "MLFLOW_TRACKING_URI"
SQLITE_PREFIX = "sqlite:///"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else SQLite in the data directory."""
    return explicit or os.environ.get(ENV) or f"{SQLITE_PREFIX}{data_dir() / 'mlflow.db'}"


def configure(explicit: str | None = None) -> str:
    """Point MLflow tracking and registry at the resolved URI; return it."""
    uri = resolve_tracking_uri(explicit)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_name(domain: str) -> str:
    return f"illicitflows-{domain}"


def use_experiment(domain: str, uri: str) -> str:
    """Create (with artifacts beside a local SQLite database) or select the experiment."""
    name = experiment_name(domain)
    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if uri.startswith(SQLITE_PREFIX):
            location = (Path(uri[len(SQLITE_PREFIX):]).parent / "mlartifacts" / domain).as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return name
