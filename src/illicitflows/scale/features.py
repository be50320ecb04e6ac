"""Transaction features over time partitions on a Dask cluster, equal to the one-pass features.

Stages (each a task per partition; a stage starts when the one before has finished):

1. ``base``: the partition's rows after its warm-up rows (:mod:`.partition`), through the
   feature builder without risk memory, from an empty history; its own rows' base features are
   kept, with the first memory round's model scores on them.
2. ``memory r`` for each round: a partition's round-``r`` memory replays the warm-up rows'
   round-``r`` scores, which were computed for their own partitions in the stage before (not
   from a truncated history), so the memory equals the one pass's; the next round's model then
   scores the partition's rows.

The working files, one per partition and stage, sit under ``work`` (row-aligned):
``rows/K`` (the staged rows, time-ordered), ``base/K``, ``score-R/K``, ``memory-R/K``.
``work`` must be reachable by every worker (a shared folder on a multi-machine cluster).
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from distributed import Client

from illicitflows.scale.partition import (
    ACCOUNT_COLUMNS,
    Partition,
    partitions,
    read_rows,
    seconds,
)
from illicitflows.scale.source import ROW, StagedInput, input_positions, stage_input
from illicitflows.scale.tasks import run_tasks, write_parquet
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.features.builder import time_order

SCORE = "score"
OUT_OF_FOLD = "oof"
TRAINING = "-train"


def base_builder(builder: TransactionFeatureBuilder) -> TransactionFeatureBuilder:
    """``builder`` without its risk-memory models: the base features only."""
    base = copy.copy(builder)
    base.memory_models, base.memory_levels = [], []
    for name in ("specs", "feature_names", "categorical_features"):
        base.__dict__.pop(name, None)
    return base


@dataclass(frozen=True)
class Work:
    """The working folder of one distributed job."""

    root: Path

    def file(self, stage: str, key: int) -> Path:
        return self.root / stage / f"{key}.parquet"

    def existing(self, stage: str, keys: range | list[int]) -> list[Path]:
        return [p for p in (self.file(stage, k) for k in keys) if p.exists()]


def base_partition(part: Partition, staged_files: list[Path], builder: TransactionFeatureBuilder,
                   work: Work) -> int:
    """Stage 1 for one partition (a worker task); returns its number of rows."""
    frame = read_rows(staged_files, part.warm_from)
    features = base_builder(builder).transform(frame)
    own = seconds(frame) >= part.start
    rows, features = frame[own].reset_index(drop=True), features[own].reset_index(drop=True)
    write_parquet(rows, work.file("rows", part.key))
    write_parquet(features, work.file("base", part.key))
    if builder.memory_models:
        write_scores(builder, 0, features, work, part.key)
    return len(rows)


def write_scores(builder: TransactionFeatureBuilder, stage: int, features: pd.DataFrame,
                 work: Work, key: int) -> None:
    """Round ``stage``'s model scores of a partition's rows (what its memory remembers)."""
    scores = builder.memory_models[stage].score(features[builder.round_inputs(stage)])
    write_parquet(pd.DataFrame({SCORE: scores}), work.file(f"score-{stage}", key))


def memory_partition(part: Partition, stage: int, builder: TransactionFeatureBuilder,
                     work: Work, train_until: int | None = None) -> int:
    """Stage ``memory stage`` for one partition (a worker task): the round's memory of its
    rows, replaying the warm-up rows' scores; then the next round's scores of its rows.

    With ``train_until`` (epoch seconds), a second memory (``memory-R-train``) is written in
    which rows before it remember the ``oof`` score column instead: the training rows'
    out-of-fold memory (:mod:`illicitflows.jobs.risk_memory`)."""
    keys = [*part.warm_keys(), part.key]
    rows = [pd.read_parquet(work.file("rows", k), columns=[ROW, *ACCOUNT_COLUMNS])
            for k in keys if work.file("rows", k).exists()]
    scored = [pd.read_parquet(work.file(f"score-{stage}", k))
              for k in keys if work.file("rows", k).exists()]
    frame = pd.concat(rows, ignore_index=True)
    scores = pd.concat(scored, ignore_index=True)
    keep = seconds(frame) >= part.warm_from
    frame, scores = frame[keep].reset_index(drop=True), scores[keep].reset_index(drop=True)
    own = seconds(frame) >= part.start
    transfers = time_order(frame)
    memory = builder.memory_features(transfers, scores[SCORE].to_numpy(), stage,
                                     dtype=np.float64)[own].reset_index(drop=True)
    write_parquet(memory, work.file(f"memory-{stage}", part.key))
    if train_until is not None:
        remembered = builder.memory_features(transfers, scores[OUT_OF_FOLD].to_numpy(), stage,
                                             dtype=np.float64)[own].reset_index(drop=True)
        train = seconds(frame[own]) < train_until
        for name in memory.columns:
            memory[name] = np.where(train, remembered[name].to_numpy(), memory[name].to_numpy())
        write_parquet(memory, work.file(f"memory-{stage}{TRAINING}", part.key))
    if stage + 1 < len(builder.memory_models):
        write_scores(builder, stage + 1, partition_features(work, part.key, stage + 1), work,
                     part.key)
    return len(memory)


def partition_features(work: Work, key: int, rounds: int, training: bool = False
                       ) -> pd.DataFrame:
    """A partition's base features and its first ``rounds`` rounds of memory (``training``:
    the memory training rows read, out of fold)."""
    variant = TRAINING if training else ""
    parts = [pd.read_parquet(work.file("base", key))]
    parts += [pd.read_parquet(work.file(f"memory-{r}{variant}", key)) for r in range(rounds)]
    return pd.concat(parts, axis=1)


class PartitionedFeatures:
    """The features of a staged input, partition by partition, on a cluster."""

    def __init__(self, client: Client, staged: StagedInput, builder: TransactionFeatureBuilder,
                 work: Path, show_progress: bool = True) -> None:
        self.client, self.staged, self.builder = client, staged, builder
        self.work = Work(Path(work))
        self.parts = partitions(staged, builder.config.horizon_s)
        self.show_progress = show_progress

    def check(self, counts: list[int], stage: str) -> None:
        if sum(counts) != self.staged.rows:
            raise RuntimeError(f"{stage}: {sum(counts):,} rows computed for "
                               f"{self.staged.rows:,} staged; refusing a short result")

    def base(self) -> None:
        """Stage 1 for every partition."""
        builder = self.client.scatter(self.builder, broadcast=True, hash=False)
        files = self.staged.files
        futures = [self.client.submit(
            base_partition, part,
            [f for k in [*part.warm_keys(), part.key] for f in files.get(k, [])],
            builder, self.work, pure=False) for part in self.parts]
        self.check(run_tasks(self.client, futures, "base features", self.show_progress),
                    "base features")

    def memory_round(self, stage: int, train_until: int | None = None) -> None:
        """Memory round ``stage`` for every partition (its scores must be written)."""
        builder = self.client.scatter(self.builder, broadcast=True, hash=False)
        futures = [self.client.submit(memory_partition, part, stage, builder, self.work,
                                      train_until, pure=False) for part in self.parts]
        self.check(run_tasks(self.client, futures, f"memory round {stage + 1}",
                              self.show_progress), f"memory round {stage + 1}")

    def compute(self) -> None:
        """Every stage: base features, then each attached memory round."""
        self.base()
        for stage in range(len(self.builder.memory_models)):
            self.memory_round(stage)

    def map_partitions(self, function, stage: str, *args) -> list:
        """``function(part, work, *args)`` on every partition (a task each), results in order."""
        futures = [self.client.submit(function, part, self.work, *args, pure=False)
                   for part in self.parts]
        return run_tasks(self.client, futures, stage, self.show_progress)


def write_feature_partition(part: Partition, work: Work, names: list[str], rounds: int,
                            offsets: np.ndarray, out: Path) -> int:
    """The output file of one partition: ``row`` (position in the validated input),
    ``timestamp`` and the features, catalogue names and order (a worker task)."""
    rows = pd.read_parquet(work.file("rows", part.key), columns=[ROW, "timestamp"])
    features = partition_features(work, part.key, rounds)[names]
    position = input_positions(rows[ROW].to_numpy(), offsets)
    frame = pd.concat([pd.DataFrame({"row": position, "timestamp": rows["timestamp"]}),
                       features], axis=1)
    write_parquet(frame, out / f"part-{part.label()}.parquet")
    return len(frame)


@dataclass
class FeatureJob:
    """What ``illicitflows features transactions`` did: rows written, rows quarantined,
    partitions and the output folder."""

    rows: int
    quarantined: int
    partitions: int
    out: Path


def check_output_folder(out: Path) -> None:
    """Refuse a folder holding an earlier run's part files (they would mix with this run's)."""
    if out.exists() and any(out.glob("part-*.parquet")):
        raise FileExistsError(f"{out}: already holds part-*.parquet files; choose an empty "
                              "--out folder")


def build_features(client: Client, paths: list[Path], out: Path,
                   builder: TransactionFeatureBuilder, period: int, strict: bool = False,
                   quarantine: Path | None = None, show_progress: bool = True) -> FeatureJob:
    """Stage ``paths``, compute the features of every partition and write them to ``out``
    (``part-<start>.parquet`` per time partition). An unfitted ``builder`` takes the currency
    rates implied by the whole input, as the single process's ``fit`` does."""
    out = Path(out)
    check_output_folder(out)
    work = out / "_work"
    staged = stage_input(client, paths, work / "staged", period, strict, quarantine,
                         show_progress)
    if not hasattr(builder, "usd_per_unit_"):
        builder = copy.copy(builder).fit(staged.rate_rows(), timing=staged.timing_rows())
    job = PartitionedFeatures(client, staged, builder, work, show_progress)
    job.compute()
    written = job.map_partitions(write_feature_partition, "write features",
                                 builder.feature_names, len(builder.memory_models),
                                 staged.offsets(), out)
    job.check(written, "write features")
    shutil.rmtree(work, ignore_errors=True)
    return FeatureJob(sum(written), staged.bad, len(job.parts), out)
