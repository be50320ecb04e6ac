"""``illicitflows train transactions``: causal features -> LightGBM -> threshold -> test metrics,
optionally beside IBM's Graph Feature Preprocessor + LightGBM on the same split; tracked in
MLflow and registered as ``illicitflows-transactions@challenger``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.jobs.config import TransactionsPipeline
from illicitflows.jobs.feedback import apply_analyst_labels
from illicitflows.jobs.risk_memory import add_risk_memory
from illicitflows.jobs.tracking import TrainingRecord, record_training
from illicitflows.jobs.training import FittedModel, fit_scoring_model
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import DTYPE
from illicitflows.modeling.metrics import (
    account_labels_from_transactions,
    account_pr_auc,
    ranking_metrics,
    recall_at_budgets,
    recall_by_group,
    threshold_metrics,
)
from illicitflows.modeling.split import split_by_dates, split_by_fractions
from illicitflows.progress import StepCallback, no_progress
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.io import load_transactions
from illicitflows.transactions.patterns import label_typologies, read_patterns
from illicitflows.transactions.schema import LABEL

TRAIN_STEPS = 6
GFP_NAME = "gfp+lightgbm"
FEATURE_CHUNK = 250_000  # rows per transform call: bounds the builder's temporary arrays


@dataclass
class TrainRequest:
    """Inputs of one training run (the CLI's options)."""

    data: Path
    pipeline: TransactionsPipeline
    fmt: str = "auto"
    accounts: Path | None = None
    patterns: Path | None = None
    baseline: str | None = None
    tracking_uri: str | None = None
    quarantine: Path | None = None
    strict: bool = False
    #: Analysts' labels (``illicitflows export labels``): override or add records' labels.
    labels: Path | None = None


def account_keys(bank: pd.Series, account: pd.Series) -> np.ndarray:
    return (bank.astype(str) + "|" + account.astype(str)).to_numpy(dtype=object)


def evaluate(frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, threshold: float,
             test: np.ndarray, typology: pd.Series | None,
             accounts: pd.Series | None) -> dict[str, Any]:
    """Test metrics of one model: F1 at the threshold, ranking, budgets, typologies, accounts."""
    yt, st = y[test], scores[test]
    senders = account_keys(frame["from_bank"][test], frame["from_account"][test])
    receivers = account_keys(frame["to_bank"][test], frame["to_account"][test])
    labels = accounts if accounts is not None else account_labels_from_transactions(
        senders, receivers, yt)
    metrics: dict[str, Any] = {**threshold_metrics(yt, st, threshold), **ranking_metrics(yt, st),
                               "recall_at_budget": recall_at_budgets(yt, st),
                               "account_pr_auc": account_pr_auc(senders, receivers, st, labels)}
    metrics["per_typology_recall"] = ({} if typology is None else
                                      recall_by_group(yt, st >= threshold,
                                                      typology.to_numpy()[test]))
    return metrics


def build_features(builder: TransactionFeatureBuilder, frame: pd.DataFrame,
                   chunk: int = FEATURE_CHUNK) -> pd.DataFrame:
    """The features of ``frame`` as one float32 matrix, transformed in time-ordered chunks that
    share one history: the same features as one pass, with chunk-sized temporaries."""
    order = np.argsort(frame["timestamp"].to_numpy(dtype="datetime64[s]"), kind="stable")
    names = builder.feature_names
    matrix = np.empty((len(frame), len(names)), dtype=DTYPE, order="F")
    state = builder.new_state()
    for start in range(0, len(order), chunk):
        rows = order[start:start + chunk]
        matrix[rows] = builder.transform(frame.iloc[rows], state)[names].to_numpy(dtype=DTYPE)
    return pd.DataFrame(matrix, columns=names, index=frame.index, copy=False)


def _splits(frame: pd.DataFrame, pipeline: TransactionsPipeline) -> np.ndarray:
    if pipeline.split.dates:
        return split_by_dates(frame["timestamp"], *pipeline.split.dates)
    return split_by_fractions(frame["timestamp"], pipeline.split.fractions)


def _account_labels(accounts: pd.DataFrame | None) -> pd.Series | None:
    if accounts is None:
        return None
    keys = account_keys(accounts["bank"], accounts["account"])
    return pd.Series(accounts["is_laundering"].to_numpy(), index=keys)


def _baseline(frame: pd.DataFrame, y: np.ndarray, splits: np.ndarray,
              pipeline: TransactionsPipeline, typology: pd.Series | None,
              accounts: pd.Series | None) -> dict[str, Any]:
    from illicitflows.modeling.gfp import GraphFeaturePeer  # snapml is an optional extra

    started = time.perf_counter()
    peer = GraphFeaturePeer()
    features = peer.build(frame)
    features_s = time.perf_counter() - started
    fitted = fit_scoring_model(features, y, splits, pipeline.baseline_model, pipeline.threshold,
                               peer.categorical_features, pipeline.seed)
    return {"name": GFP_NAME, "threshold": fitted.threshold,
            "test": evaluate(frame, y, fitted.scores, fitted.threshold, splits == "test",
                             typology, accounts),
            "timings": {"features_s": features_s,
                        "train_s": time.perf_counter() - started - features_s}}


def _typology_table(document: dict[str, Any]) -> pd.DataFrame:
    """Recall per typology for the model and, when run, the baseline."""
    ours = document["test"]["per_typology_recall"]
    theirs = document.get("baseline", {}).get("test", {}).get("per_typology_recall", {})
    return pd.DataFrame({"typology": sorted(ours),
                         "recall": [ours[k] for k in sorted(ours)],
                         "baseline_recall": [theirs.get(k, np.nan) for k in sorted(ours)]})


def train_transactions(request: TrainRequest,
                       progress: StepCallback = no_progress) -> dict[str, Any]:
    """Run the whole pipeline; returns the metrics document (``--metrics-out``)."""
    pipeline = request.pipeline
    loaded = load_transactions(request.data, request.fmt, request.accounts,
                               strict=request.strict, quarantine=request.quarantine)
    frame, analyst = apply_analyst_labels(loaded.frame, request.labels, "transactions")
    if LABEL not in frame.columns:
        raise ValueError(f"{request.data}: training needs the label column 'Is Laundering'")
    y = frame[LABEL].to_numpy(dtype=np.int8)
    typology = (label_typologies(frame, read_patterns(request.patterns))
                if request.patterns else None)
    splits = _splits(frame, pipeline)
    progress("loaded and split")

    started = time.perf_counter()
    builder = TransactionFeatureBuilder(pipeline.features).fit(frame[splits == "train"])
    features = build_features(builder, frame)
    features_s = time.perf_counter() - started
    progress("features")
    if pipeline.features.risk_memory and pipeline.model.kind == "lightgbm":
        features = add_risk_memory(builder, frame, features, y, splits, pipeline)

    fitted: FittedModel = fit_scoring_model(features, y, splits, pipeline.model,
                                            pipeline.threshold, builder.categorical_features,
                                            pipeline.seed)
    train_s = time.perf_counter() - started - features_s
    progress("model trained")

    accounts = _account_labels(loaded.accounts)
    test = splits == "test"
    document: dict[str, Any] = {
        "detector": "transactions",
        "threshold": fitted.threshold,
        "test": evaluate(frame, y, fitted.scores, fitted.threshold, test, typology, accounts),
        "valid": {**threshold_metrics(y[splits == "valid"], fitted.scores[splits == "valid"],
                                      fitted.threshold),
                  **ranking_metrics(y[splits == "valid"], fitted.scores[splits == "valid"])},
        "timings": {"features_s": features_s, "train_s": train_s},
        "rows": {name: int((splits == name).sum()) for name in ("train", "valid", "test")},
        "quarantined": int(len(loaded.validation.bad_rows)),
        "best_iterations": fitted.best_iterations,
    }
    if analyst is not None:
        document["analyst_labels"] = analyst.as_dict()
    progress("evaluated")
    if request.baseline == "gfp":
        document["baseline"] = _baseline(frame, y, splits, pipeline, typology, accounts)
    elif request.baseline:
        raise ValueError(f"unknown transactions baseline {request.baseline!r}; use gfp")
    progress("baseline")

    detector = Detector("transactions", builder, fitted.model, fitted.threshold,
                        info={"test": document["test"], "rows": document["rows"]})
    record = TrainingRecord(detector=detector, pipeline=pipeline, document=document,
                            inputs=[request.data, request.accounts, request.patterns,
                                    request.labels],
                            features=features, y=y, scores=fitted.scores, test=test,
                            tables={"per_typology": _typology_table(document)})
    document["model"] = record_training(record, request.tracking_uri)
    progress("tracked and registered")
    return document
