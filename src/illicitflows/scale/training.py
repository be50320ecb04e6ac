"""``illicitflows train transactions --cluster``: the staged model trained on a Dask cluster.

The same pipeline as :mod:`illicitflows.jobs.train_transactions` and
:mod:`illicitflows.jobs.risk_memory`, with the feature matrix left in the workers' partition
files: features per time partition (:mod:`.features`), then for every memory round a first-stage
model and its out-of-fold models fitted with ``lightgbm.dask.DaskLGBMClassifier`` over the
partitions, their scores written per partition, the round's memory computed per partition; then
the final model(s). The registered detector is the single process's kind: the feature builder
(with every round's booster) and a plain LightGBM booster.

Differences from the single process, all forced by data that no longer fits one process:
``lightgbm.dask`` has no early stopping, so each fit runs ``num_boost_round`` rounds and keeps
the best iteration of its validation average precision (LightGBM evaluates the validation rows
held by the worker whose model is returned); negatives are sampled per partition (seeded by
partition); the out-of-fold folds are cut at hour boundaries (``memory_folds`` consecutive
periods of about equal training rows, the single process cuts between rows); the SHAP
summary and PR curve logged to MLflow use ``shap_sample`` test rows, while every metric is
computed on all test rows.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from distributed import Client

from illicitflows.jobs.config import ModelConfig, TransactionsPipeline
from illicitflows.jobs.tracking import TrainingRecord, record_training
from illicitflows.jobs.train_transactions import TrainRequest, evaluate
from illicitflows.jobs.training import lightgbm_params, negative_share
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import (
    DTYPE,
    LightGBMModel,
    averaged,
    booster_params,
    weight_of_positives,
)
from illicitflows.modeling.metrics import ranking_metrics, threshold_metrics
from illicitflows.modeling.split import fraction_cut_dates
from illicitflows.modeling.threshold import choose_threshold
from illicitflows.scale.cluster import ClusterSpec, cluster_size, connect
from illicitflows.scale.features import (
    OUT_OF_FOLD,
    SCORE,
    PartitionedFeatures,
    Work,
    partition_features,
)
from illicitflows.scale.partition import Partition, seconds
from illicitflows.scale.source import parse_period, stage_input
from illicitflows.scale.tasks import write_parquet
from illicitflows.settings import data_dir
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.schema import LABEL

KEY_COLUMNS = ["from_bank", "from_account", "to_bank", "to_account"]


@dataclass(frozen=True)
class SplitTimes:
    """The temporal split as epoch seconds: train before ``valid_from``, test from
    ``test_from``."""

    valid_from: int
    test_from: int

    def names(self, stamps: np.ndarray) -> np.ndarray:
        names = np.full(len(stamps), "train", dtype=object)
        names[stamps >= self.valid_from] = "valid"
        names[stamps >= self.test_from] = "test"
        return names


def split_times(days: pd.Series, pipeline: TransactionsPipeline) -> SplitTimes:
    """The pipeline's split (dates, or fractions of whole days) from the rows per day."""
    if pipeline.split.dates:
        first, second = pipeline.split.dates
    else:
        first, second = fraction_cut_dates(days.index.to_numpy(), days.to_numpy(),
                                           pipeline.split.fractions)
    valid_from, test_from = (int(pd.Timestamp(d).timestamp()) for d in (first, second))
    if test_from <= valid_from:
        raise ValueError(f"split dates must increase: {first} then {second}")
    return SplitTimes(valid_from, test_from)


def labelled_rows(part: Partition, work: Work, split: SplitTimes) -> pd.DataFrame:
    """A partition's labels, split names and account keys (row-aligned with its features)."""
    rows = pd.read_parquet(work.file("rows", part.key), columns=["timestamp", LABEL,
                                                                  *KEY_COLUMNS])
    return rows.assign(split=split.names(seconds(rows)))


def train_counts(part: Partition, work: Work, split: SplitTimes) -> tuple[int, int]:
    """Negative and positive training rows of a partition (the sampling share and the
    positive weight count them all)."""
    rows = labelled_rows(part, work, split)
    train = rows[LABEL][rows["split"] == "train"]
    return int((train == 0).sum()), int((train == 1).sum())


def fit_rows(part: Partition, work: Work, split: SplitTimes, names: list[str], rounds: int,
             which: str, share: float, seed: int,
             without: tuple[int, int] | None = None) -> pd.DataFrame:
    """One partition's rows of split ``which`` as a fit reads them: ``names`` (float32), the
    label and a weight; training negatives sampled with ``share`` (weighted back); rows with
    ``without[0] <= t < without[1]`` left out (an out-of-fold model's fold)."""
    rows = labelled_rows(part, work, split)
    features = partition_features(work, part.key, rounds, training=which == "train")[names]
    keep = (rows["split"] == which).to_numpy().copy()
    if without is not None:
        stamps = seconds(rows)
        keep &= (stamps < without[0]) | (stamps >= without[1])
    y = rows[LABEL].to_numpy(dtype=np.int8)
    weight = np.ones(len(rows))
    if which == "train" and share < 1.0:
        draw = np.random.default_rng([seed, part.key]).random(len(rows))
        keep &= (y == 1) | (draw < share)
        weight = np.where(y == 1, 1.0, 1.0 / share)
    frame = features[keep].astype(DTYPE).reset_index(drop=True)
    return frame.assign(_label=y[keep], _weight=weight[keep])


def fit_dask(client: Client, train: dd.DataFrame, valid: dd.DataFrame | None,
             params: dict[str, Any], rounds: int, categorical: list[str]) -> LightGBMModel:
    """A ``DaskLGBMClassifier`` fit of ``rounds`` rounds; with ``valid``, cut back to the
    round of best validation average precision. Returns a plain booster's model."""
    names = [c for c in train.columns if not c.startswith("_")]
    settings = {**booster_params(params), "metric": "average_precision"}
    settings.pop("num_threads", None)  # each worker's threads, set by lightgbm.dask
    model = lgb.DaskLGBMClassifier(client=client, n_estimators=rounds, **settings)
    extra = {} if valid is None else {"eval_X": (valid[names],), "eval_y": (valid["_label"],)}
    model.fit(train[names], train["_label"], sample_weight=train["_weight"],
              categorical_feature=[c for c in categorical if c in names], **extra)
    booster = model.to_local().booster_
    history = (model.evals_result_ or {}).get("valid_0", {}).get("average_precision")
    best = int(np.nanargmax(history)) + 1 if history else booster.current_iteration()
    return LightGBMModel(lgb.Booster(model_str=booster.model_to_string(num_iteration=best)))


def score_partition(part: Partition, work: Work, split: SplitTimes, stage: int,
                    served: LightGBMModel, folds: list[LightGBMModel], edges: np.ndarray,
                    names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Round ``stage``'s scores of a partition (``score``: the served model's on the served
    features; ``oof``: the fold model's on the training rows); returns the validation rows'
    labels and scores (the threshold)."""
    rows = labelled_rows(part, work, split)
    scores = served.score(partition_features(work, part.key, stage)[names])
    held_out = scores.copy()
    train = (rows["split"] == "train").to_numpy()
    if train.any():
        features = partition_features(work, part.key, stage, training=True)[names]
        fold = np.searchsorted(edges, seconds(rows), side="right")
        for k, model in enumerate(folds):
            rows_k = train & (fold == k)
            if rows_k.any():
                held_out[rows_k] = model.score(features[rows_k])
    write_parquet(pd.DataFrame({SCORE: scores, OUT_OF_FOLD: held_out}),
                  work.file(f"score-{stage}", part.key))
    valid = (rows["split"] == "valid").to_numpy()
    return rows[LABEL].to_numpy()[valid], scores[valid]


def final_scores(part: Partition, work: Work, split: SplitTimes, rounds: int,
                 model: LightGBMModel, names: list[str], sample: int,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The final model's scores of a partition's validation and test rows (with labels and
    account keys, for the metrics), and ``sample`` of its test rows' features with their label
    and score (the TreeSHAP summary and PR curve logged to MLflow)."""
    rows = labelled_rows(part, work, split)
    evaluated = (rows["split"] != "train").to_numpy()
    features = partition_features(work, part.key, rounds)[names]
    scores = model.score(features[evaluated]) if evaluated.any() else np.empty(0)
    scored = rows[evaluated].reset_index(drop=True).assign(score=scores)
    test = np.flatnonzero(scored["split"].to_numpy() == "test")
    rng = np.random.default_rng([seed, part.key])
    picked = np.sort(rng.choice(test, size=min(sample, len(test)), replace=False))
    chosen = features[evaluated].iloc[picked].reset_index(drop=True)
    return scored, chosen.assign(_label=scored[LABEL].to_numpy()[picked],
                                 _score=scored["score"].to_numpy()[picked])


class DaskTraining:
    """One distributed training run over a staged input's partitions."""

    def __init__(self, client: Client, job: PartitionedFeatures, split: SplitTimes,
                 pipeline: TransactionsPipeline, show_progress: bool) -> None:
        self.client, self.job, self.split, self.pipeline = client, job, split, pipeline
        self.builder = job.builder
        self.show_progress = show_progress
        hours = job.staged.hours()
        self.hours = pd.Series(hours.to_numpy(),
                               index=hours.index.to_numpy(dtype="datetime64[s]").astype(np.int64))
        self.train_parts = self.parts_with_rows(np.iinfo(np.int64).min, split.valid_from)
        self.valid_parts = self.parts_with_rows(split.valid_from, split.test_from)
        counts = job.map_partitions(train_counts, "count training rows", split)
        self.negatives, self.positives = (sum(c[i] for c in counts) for i in (0, 1))

    def parts_with_rows(self, lo: int, hi: int,
                        without: tuple[int, int] | None = None) -> list[Partition]:
        """The partitions holding rows with ``lo <= t < hi`` outside ``without`` (a fit must
        not hand LightGBM an empty partition)."""
        stamps, counts = self.hours.index.to_numpy(), self.hours.to_numpy()
        inside = (stamps >= lo) & (stamps < hi)
        if without is not None:
            inside &= (stamps < without[0]) | (stamps >= without[1])
        keys = set((stamps[inside & (counts > 0)] // self.job.staged.period).tolist())
        return [p for p in self.job.parts if p.key in keys]

    def frame(self, parts: list[Partition], names: list[str], rounds: int, which: str,
              model: ModelConfig, seed: int,
              without: tuple[int, int] | None = None) -> dd.DataFrame:
        share = negative_share(self.negatives, model) if which == "train" else 1.0
        meta = pd.DataFrame({**{n: pd.Series(dtype=DTYPE) for n in names},
                             "_label": pd.Series(dtype=np.int8),
                             "_weight": pd.Series(dtype=np.float64)})
        return dd.from_map(fit_rows, parts, work=self.job.work, split=self.split, names=names,
                           rounds=rounds, which=which, share=share, seed=seed, without=without,
                           meta=meta,
                           enforce_metadata=False)

    def params(self, model: ModelConfig, seed: int) -> dict[str, Any]:
        """The configured LightGBM parameters; the positive weight from the training counts."""
        return {**lightgbm_params(model, np.zeros(0), seed),
                "scale_pos_weight": weight_of_positives(self.negatives, self.positives,
                                                        model.imbalance,
                                                        model.max_positive_weight)}

    def fit(self, names: list[str], rounds: int, seed: int, boost_rounds: int,
            without: tuple[int, int] | None = None, validate: bool = True) -> LightGBMModel:
        model = self.pipeline.model
        parts = self.parts_with_rows(np.iinfo(np.int64).min, self.split.valid_from, without)
        train = self.frame(parts, names, rounds, "train", model, seed, without)
        valid = (self.frame(self.valid_parts, names, rounds, "valid", model, seed)
                 if validate else None)
        return fit_dask(self.client, train, valid, self.params(model, seed), boost_rounds,
                        self.builder.categorical_features)

    def fold_edges(self) -> np.ndarray:
        """Where the ``memory_folds`` consecutive folds of the training period start (epoch
        seconds, hour boundaries), each with about the same number of training rows."""
        hours = self.job.staged.hours()
        hours = hours[hours.index < pd.Timestamp(self.split.valid_from, unit="s")]
        share = np.cumsum(hours.to_numpy()) / hours.sum()
        k = self.pipeline.memory_folds
        cuts = np.searchsorted(share, np.arange(1, k) / k, side="right") + 1
        starts = hours.index.to_numpy(dtype="datetime64[s]").astype(np.int64)
        return np.unique(starts[np.minimum(cuts, len(starts) - 1)])

    def memory_round(self, stage: int) -> None:
        """Round ``stage``: the full first-stage model, its out-of-fold models, their scores,
        the threshold and the round's memory."""
        names = self.builder.round_inputs(stage)
        seed = self.pipeline.seed
        full = self.fit(names, stage, seed, self.pipeline.model.num_boost_round)
        edges = self.fold_edges()
        bounds = np.concatenate([[np.iinfo(np.int64).min], edges, [np.iinfo(np.int64).max]])
        fold_models = [self.fit(names, stage, seed, full.booster.current_iteration(),
                                (int(lo), int(hi)), validate=False)
                       for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        shared = self.client.scatter([full, fold_models], broadcast=True, hash=False)
        valid = self.job.map_partitions(score_partition, f"scores round {stage + 1}",
                                        self.split, stage, shared[0], shared[1], edges, names)
        y = np.concatenate([v[0] for v in valid])
        scores = np.concatenate([v[1] for v in valid])
        threshold = self.pipeline.threshold
        self.builder.attach_memory(full, choose_threshold(y, scores, threshold.policy,
                                                          threshold.budget))
        self.job.memory_round(stage, train_until=self.split.valid_from)


def train_on_cluster(client: Client, request: TrainRequest, period: int,
                     show_progress: bool = True) -> dict[str, Any]:
    """Train, evaluate, track and register the transactions detector on the cluster; returns
    the metrics document (as the single process's, with the cluster size)."""
    if request.fmt == "amlsim" or request.accounts is not None:
        raise ValueError("--cluster reads IBM CSV or Parquet transactions; convert AMLSim "
                         "output first or train without --cluster")
    if period % 3600:
        raise ValueError("--partition: training cuts folds at whole hours; give whole hours")
    pipeline = request.pipeline
    if pipeline.model.kind != "lightgbm":
        raise ValueError("--cluster trains LightGBM models only (model.kind: lightgbm)")
    started = time.perf_counter()
    work = data_dir() / "scale-work" / f"train-{uuid.uuid4().hex}"
    quarantine = None if request.quarantine is None else request.quarantine.with_suffix("")
    staged = stage_input(client, [request.data], work / "staged", period, request.strict,
                         quarantine, show_progress)
    split = split_times(staged.days(), pipeline)
    rates = staged.rate_rows()
    builder = TransactionFeatureBuilder(pipeline.features).fit(
        rates[seconds(rates) < split.valid_from], timing=staged.timing_rows(split.valid_from))
    job = PartitionedFeatures(client, staged, builder, work, show_progress)
    job.base()
    features_s = time.perf_counter() - started
    training = DaskTraining(client, job, split, pipeline, show_progress)
    if pipeline.features.risk_memory:
        for stage in range(pipeline.features.memory_rounds):
            training.memory_round(stage)
    rounds = len(builder.memory_models)
    names = builder.feature_names
    members = [training.fit(names, rounds, pipeline.seed + member,
                            pipeline.model.num_boost_round)
               for member in range(pipeline.model.ensemble)]
    model = averaged(members)
    results = job.map_partitions(final_scores, "final scores", split, rounds, model, names,
                                 pipeline.shap_sample, pipeline.seed)
    scored = pd.concat([r[0] for r in results], ignore_index=True)
    sample = pd.concat([r[1] for r in results], ignore_index=True)
    train_s = time.perf_counter() - started - features_s
    days = staged.days()
    train_rows = int(days[days.index < pd.Timestamp(split.valid_from, unit="s")].sum())
    document = _document(scored, pipeline, staged.bad, features_s, train_s,
                         [m.booster.current_iteration() for m in members], train_rows)
    size = cluster_size(client)
    document["cluster"] = size.as_params()
    detector = Detector("transactions", builder, model, document["threshold"],
                        info={"test": document["test"], "rows": document["rows"]})
    record = TrainingRecord(detector=detector, pipeline=pipeline, document=document,
                            inputs=[request.data], features=sample[names],
                            y=sample["_label"].to_numpy(), scores=sample["_score"].to_numpy(),
                            test=np.ones(len(sample), dtype=bool))
    document["model"] = record_training(record, request.tracking_uri)
    with mlflow.start_run(run_id=document["model"]["run_id"]):
        mlflow.log_params(size.as_params())
        mlflow.set_tag("engine", "dask")
    shutil.rmtree(work, ignore_errors=True)
    return document


def _document(scored: pd.DataFrame, pipeline: TransactionsPipeline, bad: int,
              features_s: float, train_s: float, best: list[int],
              train_rows: int) -> dict[str, Any]:
    valid = scored[scored["split"] == "valid"]
    y_valid, s_valid = valid[LABEL].to_numpy(), valid["score"].to_numpy()
    threshold = choose_threshold(y_valid, s_valid, pipeline.threshold.policy,
                                 pipeline.threshold.budget)
    y = scored[LABEL].to_numpy(dtype=np.int8)
    test = (scored["split"] == "test").to_numpy()
    return {
        "detector": "transactions",
        "threshold": threshold,
        "test": evaluate(scored, y, scored["score"].to_numpy(), threshold, test, None, None),
        "valid": {**threshold_metrics(y_valid, s_valid, threshold),
                  **ranking_metrics(y_valid, s_valid)},
        "timings": {"features_s": features_s, "train_s": train_s},
        "rows": {"train": train_rows, "valid": int(len(valid)),
                 "test": int(test.sum())},
        "quarantined": bad,
        "best_iterations": best,
    }


def train_with_cluster(cluster: str, request: TrainRequest, partition: str,
                       worker_memory: str | None,
                       say: Callable[[str], None] = print) -> dict[str, Any]:
    """``illicitflows train transactions --cluster``: connect, then :func:`train_on_cluster`."""
    with connect(ClusterSpec.parse(cluster, worker_memory), say=say) as client:
        return train_on_cluster(client, request, parse_period(partition))
