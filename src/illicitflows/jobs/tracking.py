"""Record a training run in MLflow: config, data fingerprint, code and feature versions,
parameters, metrics, threshold, PR curve, TreeSHAP summary, tables; register the model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from illicitflows.jobs.config import PipelineBase
from illicitflows.modeling.detector import Detector
from illicitflows.tracking.registry import log_and_register
from illicitflows.tracking.runs import (
    code_version,
    fingerprint,
    flat_metrics,
    log_pr_curve,
    log_shap_summary,
)
from illicitflows.tracking.setup import configure, use_experiment


@dataclass
class TrainingRecord:
    """Everything a training run leaves in MLflow."""

    detector: Detector
    pipeline: PipelineBase
    document: dict[str, Any]
    inputs: list[Path | None]
    features: pd.DataFrame
    y: np.ndarray | None
    scores: np.ndarray
    test: np.ndarray
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # logged beside the document's


def record_training(record: TrainingRecord, tracking_uri: str | None) -> dict[str, str]:
    """Log the run, register the detector as challenger; returns name, version and run id."""
    uri = configure(tracking_uri)
    domain = record.detector.domain
    use_experiment(domain, uri)
    pipeline = record.pipeline
    with mlflow.start_run() as run:
        mlflow.set_tags({
            "detector": domain, "data_fingerprint": fingerprint(record.inputs),
            "code_version": code_version(), "features_version": record.detector.builder.version,
            "split": pipeline.split.describe(), "model_kind": pipeline.model.kind,
            "inputs": ", ".join(str(p) for p in record.inputs if p is not None),
        })
        mlflow.log_params(flat_metrics("", {"seed": pipeline.seed,
                                            "model": pipeline.model.params,
                                            "imbalance": pipeline.model.imbalance,
                                            "negative_sample": pipeline.model.negative_sample,
                                            "max_negatives": pipeline.model.max_negatives,
                                            "ensemble": pipeline.model.ensemble,
                                            "threshold_policy": pipeline.threshold.policy}))
        mlflow.log_param("n_features", len(record.detector.builder.feature_names))
        mlflow.log_dict(pipeline.model_dump(mode="json"), "config/pipeline.json")
        mlflow.log_dict(_feature_catalogue(record.detector), "config/features.json")
        mlflow.log_metric("threshold", record.detector.threshold)
        mlflow.log_metrics(flat_metrics("", {k: v for k, v in record.document.items()
                                             if k in ("test", "valid", "timings", "rows")}))
        if "baseline" in record.document:
            mlflow.log_metrics(flat_metrics("baseline", record.document["baseline"]))
        mlflow.log_metrics(record.metrics)
        for name, table in record.tables.items():
            mlflow.log_table(table, f"tables/{name}.json")
        _log_plots(record)
        version = log_and_register(record.detector)
        mlflow.log_dict(json.loads(json.dumps(record.document, default=str)),
                        "metrics/metrics.json")
    return {"name": version.name, "version": str(version.version), "run_id": run.info.run_id}


def _feature_catalogue(detector: Detector) -> dict[str, Any]:
    return {"version": detector.builder.version,
            "features": [{"name": s.name, "family": s.family, "description": s.description}
                         for s in detector.builder.specs]}


def _log_plots(record: TrainingRecord) -> None:
    test = record.test
    if record.y is not None and len(np.unique(record.y[test])) == 2:
        log_pr_curve(record.y[test], record.scores[test], record.detector.threshold,
                     f"{record.detector.domain}: test precision-recall")
    rows = np.flatnonzero(test)
    rng = np.random.default_rng(record.pipeline.seed)
    sample = np.sort(rng.choice(rows, size=min(len(rows), record.pipeline.shap_sample),
                                replace=False))
    features = record.features.iloc[sample]
    _, contributions = record.detector.model.contributions(features)
    log_shap_summary(contributions, features)
