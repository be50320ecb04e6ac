"""``illicitflows train trade``: causal trade features -> LightGBM (or a label-free isolation
forest) -> threshold -> inspection-rate metrics, optionally beside the raw-column LightGBM on
the same split; tracked in MLflow and registered as ``illicitflows-trade@challenger``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from illicitflows.jobs.config import ModelConfig, TradePipeline
from illicitflows.jobs.tracking import TrainingRecord, record_training
from illicitflows.jobs.trade_ranking import RankedPolicies, policy_table, rank_policies
from illicitflows.jobs.training import FittedModel, fit_scoring_model
from illicitflows.modeling.detector import Detector, FeatureBuilder
from illicitflows.modeling.metrics import (
    INSPECTION_RATES,
    inspection_metrics,
    ranking_metrics,
    recall_by_group,
    threshold_metrics,
    top_k_mask,
)
from illicitflows.modeling.ranking import Ranking
from illicitflows.modeling.split import split_by_dates, split_by_fractions
from illicitflows.modeling.threshold import choose_threshold
from illicitflows.progress import StepCallback, no_progress
from illicitflows.tracking.runs import flat_metrics
from illicitflows.trade.features import TradeFeatureBuilder
from illicitflows.trade.features.raw import RawColumnsBuilder
from illicitflows.trade.io import load_declarations, load_mirror_exports
from illicitflows.trade.schema import ID, LABEL, revenue_at_stake

TRAIN_STEPS = 7
RAW_BASELINE = "lightgbm-raw"
BASELINES = (RAW_BASELINE,)


@dataclass
class TrainTradeRequest:
    """Inputs of one training run (the CLI's options); several data files are concatenated."""

    data: Path | list[Path]
    pipeline: TradePipeline
    fmt: str = "auto"
    mirror: Path | None = None
    baseline: str | None = None
    tracking_uri: str | None = None
    quarantine: Path | None = None
    strict: bool = False

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in (self.data if isinstance(self.data, list) else [self.data])]


@dataclass
class _Labels:
    """What evaluation needs per record: label, revenue at stake, typology."""

    y: np.ndarray
    revenue: np.ndarray
    typology: np.ndarray


def quarantine_for(request: TrainTradeRequest, path: Path) -> Path | None:
    """Where ``path``'s bad rows go: the quarantine file itself when only one file is read,
    else ``<quarantine stem>-<input stem><suffix>`` beside it."""
    q = request.quarantine
    if q is None or (len(request.paths) == 1 and request.mirror is None):
        return q
    return q.with_name(f"{q.stem}-{path.stem}{q.suffix}")


def load_data(request: TrainTradeRequest,
              quarantined: dict[str, int] | None = None) -> pd.DataFrame:
    """The declarations of every data file, concatenated. Bad rows go to each file's
    quarantine file, counted in ``quarantined`` (file -> rows)."""
    frames = []
    for path in request.paths:
        target = quarantine_for(request, path)
        frame, result = load_declarations(path, request.fmt, strict=request.strict,
                                          quarantine=target)
        frames.append(frame)
        _count(quarantined, target, len(result.bad_rows))
    frame = pd.concat(frames, ignore_index=True)
    repeated = frame[ID].duplicated()
    if repeated.any():
        raise ValueError(f"declaration id {frame[ID][repeated].iloc[0]!r} appears in more than "
                         "one data file")
    return frame


def load_mirror(request: TrainTradeRequest,
                quarantined: dict[str, int] | None = None) -> pd.DataFrame | None:
    if request.mirror is None:
        return None
    target = quarantine_for(request, request.mirror)
    mirror, result = load_mirror_exports(request.mirror, strict=request.strict,
                                         quarantine=target)
    _count(quarantined, target, len(result.bad_rows))
    return mirror


def _count(quarantined: dict[str, int] | None, target: Path | None, rows: int) -> None:
    if quarantined is not None and target is not None and rows:
        quarantined[str(target)] = rows


def evaluate(labels: _Labels, scores: np.ndarray, threshold: float,
             rows: np.ndarray) -> dict[str, Any]:
    """Inspection rates, ranking, threshold metrics and recall per typology on ``rows``."""
    y, score, typology = labels.y[rows], scores[rows], labels.typology[rows]
    return {**inspection_metrics(y, score, labels.revenue[rows]), **ranking_metrics(y, score),
            **threshold_metrics(y, score, threshold),
            "flagged_share": float(np.mean(score >= threshold)),
            "per_typology_recall": recall_by_group(y, score >= threshold, typology),
            "per_typology_recall_at_5": recall_by_group(y, top_k_mask(score, 0.05), typology)}


def _splits(frame: pd.DataFrame, pipeline: TradePipeline) -> np.ndarray:
    if pipeline.split.dates:
        return split_by_dates(frame["date"], *pipeline.split.dates)
    return split_by_fractions(frame["date"], pipeline.split.fractions)


def _sample_weight(labels: _Labels | None, splits: np.ndarray,
                   pipeline: TradePipeline) -> np.ndarray | None:
    """1 for clean rows, 1 + revenue / mean training revenue for fraudulent ones."""
    if not pipeline.revenue_weight or labels is None:
        return None
    fraud = labels.y == 1
    revenue = np.nan_to_num(labels.revenue)
    mean = revenue[fraud & (splits == "train")].mean() if (fraud & (splits == "train")).any() \
        else 0.0
    return 1.0 + np.where(fraud, revenue / mean, 0.0) if mean > 0 else None


def _features(builder: FeatureBuilder, frame: pd.DataFrame, splits: np.ndarray,
              label_free: bool) -> tuple[pd.DataFrame, float]:
    """Model inputs of every row from a builder fitted on ``train`` (without labels in
    label-free mode); and the seconds it took."""
    started = time.perf_counter()
    train = frame[splits == "train"]
    builder.fit(train.drop(columns=[LABEL]) if label_free and LABEL in train.columns else train)
    features = builder.transform(frame)[builder.feature_names]
    return features, time.perf_counter() - started


def _fit_model(builder: FeatureBuilder, features: pd.DataFrame, labels: _Labels | None,
               splits: np.ndarray, model: ModelConfig, pipeline: TradePipeline,
               sample_weight: np.ndarray | None) -> FittedModel:
    y = None if labels is None or model.kind == "isolation-forest" else labels.y
    return fit_scoring_model(features, y, splits, model, pipeline.threshold,
                             builder.categorical_features, pipeline.seed, sample_weight)


def _baseline(frame: pd.DataFrame, labels: _Labels | None, splits: np.ndarray,
              pipeline: TradePipeline) -> dict[str, Any]:
    """The raw-column LightGBM on the same split, with its own parameters."""
    model = pipeline.baseline_model
    builder = RawColumnsBuilder()
    features, features_s = _features(builder, frame, splits, model.kind == "isolation-forest")
    started = time.perf_counter()
    fitted = _fit_model(builder, features, labels, splits, model, pipeline, None)
    return {"name": RAW_BASELINE, "threshold": fitted.threshold,
            "test": _evaluated(labels, fitted, splits == "test"),
            "best_iterations": fitted.best_iterations,
            "timings": {"features_s": features_s, "train_s": time.perf_counter() - started}}


def _evaluated(labels: _Labels | None, fitted: FittedModel, rows: np.ndarray) -> dict[str, Any]:
    return {} if labels is None else evaluate(labels, fitted.scores, fitted.threshold, rows)


def _inspection_table(document: dict[str, Any]) -> pd.DataFrame:
    """Precision, recall and revenue caught per inspection rate, model and baseline."""
    table = pd.DataFrame({"inspection_rate_pct": list(INSPECTION_RATES)})
    runs = {"": document["test"], "baseline_": document.get("baseline", {}).get("test", {})}
    for prefix, metrics in runs.items():
        for metric in ("precision_at", "recall_at", "revenue_at"):
            if metric in metrics:
                table[f"{prefix}{metric.removesuffix('_at')}"] = [
                    metrics[metric][str(n)] for n in INSPECTION_RATES]
    return table


def _typology_table(document: dict[str, Any]) -> pd.DataFrame:
    """Recall per typology at the threshold and at 5 % inspected, model and baseline."""
    ours = document["test"].get("per_typology_recall", {})
    theirs = document.get("baseline", {}).get("test", {})
    names = sorted(ours)
    columns: dict[str, list[Any]] = {"typology": names}
    for prefix, metrics in (("", document["test"]), ("baseline_", theirs)):
        for key in ("per_typology_recall", "per_typology_recall_at_5"):
            values = metrics.get(key, {})
            columns[f"{prefix}{key.removeprefix('per_typology_')}"] = [
                values.get(k, np.nan) for k in names]
    return pd.DataFrame(columns)


def _served(fitted: FittedModel, ranked: RankedPolicies | None, features: pd.DataFrame,
            labels: _Labels | None, splits: np.ndarray, pipeline: TradePipeline) -> FittedModel:
    """The fitted model with the served ranking's scores (inspection priorities) and a
    threshold chosen on them, on validation, by the pipeline's threshold policy: the flagged
    declarations are those the ranking puts first."""
    if ranked is None or labels is None:
        return fitted
    ranking: Ranking = ranked.ranking
    scores = np.full(len(features), np.nan)
    rows = np.flatnonzero(splits != "train")
    scores[rows] = ranking.score(fitted.scores[rows], features.iloc[rows])
    valid = splits == "valid"
    threshold = choose_threshold(labels.y[valid], scores[valid], pipeline.threshold.policy,
                                 pipeline.threshold.budget)
    return FittedModel(fitted.model, threshold, scores, fitted.best_iterations)


def _labels(frame: pd.DataFrame) -> _Labels | None:
    if LABEL not in frame.columns or frame[LABEL].isna().any():
        return None
    return _Labels(y=frame[LABEL].to_numpy(dtype=np.int8), revenue=revenue_at_stake(frame),
                   typology=frame["typology"].fillna("").astype(str).to_numpy())


def train_trade(request: TrainTradeRequest,
                progress: StepCallback = no_progress) -> dict[str, Any]:
    """Run the whole pipeline; returns the metrics document (``--metrics-out``)."""
    pipeline = request.pipeline
    if request.baseline and request.baseline not in BASELINES:
        raise ValueError(f"unknown trade baseline {request.baseline!r}; use one of {BASELINES}")
    started = time.perf_counter()
    quarantined: dict[str, int] = {}
    frame = load_data(request, quarantined)
    mirror = load_mirror(request, quarantined)
    labels = _labels(frame)
    label_free = pipeline.model.kind == "isolation-forest"
    if labels is None and not label_free:
        raise ValueError("LightGBM training needs the 'fraud' label on every declaration; "
                         "use model.kind: isolation-forest for label-free mode")
    splits = _splits(frame, pipeline)
    load_s = time.perf_counter() - started
    progress("loaded and split")

    builder = TradeFeatureBuilder(pipeline.features, mirror)
    features, features_s = _features(builder, frame, splits, label_free)
    progress("features")
    started = time.perf_counter()
    fitted = _fit_model(builder, features, labels, splits, pipeline.model, pipeline,
                        _sample_weight(labels, splits, pipeline))
    train_s = time.perf_counter() - started
    progress("model trained")
    started = time.perf_counter()
    ranked = None if labels is None or label_free else rank_policies(
        features, labels.y, labels.revenue, fitted.scores, splits,
        builder.categorical_features, pipeline)
    fitted = _served(fitted, ranked, features, labels, splits, pipeline)
    ranking_s = time.perf_counter() - started
    progress("ranking policies")

    test = splits == "test"
    document: dict[str, Any] = {
        "detector": "trade",
        "threshold": fitted.threshold,
        "test": _evaluated(labels, fitted, test),
        "valid": _evaluated(labels, fitted, splits == "valid"),
        "rows": {name: int((splits == name).sum()) for name in ("train", "valid", "test")},
        "timings": {"load_s": load_s, "features_s": features_s, "train_s": train_s,
                    "ranking_s": ranking_s},
        "quarantined": sum(quarantined.values()),
        "quarantine_files": quarantined,
        "best_iterations": fitted.best_iterations,
        "split": pipeline.split.describe(),
    }
    progress("evaluated")
    if request.baseline:
        document["baseline"] = _baseline(frame, labels, splits, pipeline)
    progress("baseline")

    info = {"test": document["test"], "rows": document["rows"]}
    tables = {"inspection_rates": _inspection_table(document)}
    metrics: dict[str, float] = {}
    if ranked is not None:
        document["ranking"] = {"configured": pipeline.ranking, **ranked.document()}
        info["ranking"] = {k: v for k, v in document["ranking"].items() if k != "policies"}
        tables["ranking_policies"] = policy_table(
            ranked.policies, document.get("baseline", {}).get("test"), ranked.ranking.policy)
        metrics = flat_metrics("policy", {name: {"test": values["test"]}
                                          for name, values in ranked.policies.items()})
    detector = Detector("trade", builder, fitted.model, fitted.threshold, info=info,
                        ranking=None if ranked is None else ranked.ranking)
    if document["test"].get("per_typology_recall"):
        tables["per_typology"] = _typology_table(document)
    record = TrainingRecord(detector=detector, pipeline=pipeline, document=document,
                            inputs=[*request.paths, request.mirror], features=features,
                            y=None if labels is None else labels.y, scores=fitted.scores,
                            test=test, tables=tables, metrics=metrics)
    document["model"] = record_training(record, request.tracking_uri)
    progress("tracked and registered")
    return document
