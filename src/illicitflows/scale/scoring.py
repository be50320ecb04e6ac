"""Batch scoring of a large transactions file with a registered detector, on a Dask cluster.

The partitions' features (risk memory included, :mod:`.features`) are those of the single
process, so are the scores; each partition's rows are written with their score, flag, risk band
and (flagged) top reasons, as ``illicitflows score`` writes them, plus ``row``: the record's
position in the validated input.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from distributed import Client

from illicitflows.modeling.detector import Detector
from illicitflows.scale.cluster import ClusterSpec, connect
from illicitflows.scale.features import (
    PartitionedFeatures,
    Work,
    check_output_folder,
    partition_features,
)
from illicitflows.scale.partition import Partition
from illicitflows.scale.source import ROW, input_positions, parse_period, stage_input
from illicitflows.scale.tasks import write_parquet
from illicitflows.serving.engine import decision_columns
from illicitflows.tracking.registry import load_detector
from illicitflows.tracking.setup import configure


@dataclass
class ScoringJob:
    """What a distributed scoring run did."""

    rows: int
    flagged: int
    quarantined: int
    partitions: int
    out: Path


def scored_partition(part: Partition, work: Work, detector: Detector, offsets: np.ndarray,
                     out: Path) -> tuple[int, int]:
    """Score one partition's rows and write them (a worker task); returns (rows, flagged)."""
    rows = pd.read_parquet(work.file("rows", part.key))
    features = partition_features(work, part.key, len(detector.builder.memory_models))
    features = features[detector.builder.feature_names]
    columns = decision_columns(detector, features)
    scored = rows.drop(columns=[ROW]).assign(**columns)
    scored.insert(0, "row", input_positions(rows[ROW].to_numpy(), offsets))
    write_parquet(scored, out / f"part-{part.label()}.parquet")
    return len(scored), int(columns["flagged"].sum())


def score_transactions(client: Client, paths: list[Path], out: Path, detector: Detector,
                       period: int, strict: bool = False, quarantine: Path | None = None,
                       show_progress: bool = True) -> ScoringJob:
    """Stage ``paths``, compute every partition's features and scores, write them to ``out``
    (``part-<start>.parquet`` per time partition)."""
    out = Path(out)
    check_output_folder(out)
    work = out / "_work"
    staged = stage_input(client, paths, work / "staged", period, strict, quarantine,
                         show_progress)
    job = PartitionedFeatures(client, staged, detector.builder, work, show_progress)
    job.compute()
    shared = client.scatter(detector, broadcast=True, hash=False)
    written = job.map_partitions(scored_partition, "score partitions", shared,
                                 staged.offsets(), out)
    job.check([rows for rows, _ in written], "score partitions")
    shutil.rmtree(work, ignore_errors=True)
    return ScoringJob(sum(r for r, _ in written), sum(f for _, f in written), staged.bad,
                      len(job.parts), out)


def score_on_cluster(cluster: str, paths: list[Path], out: Path, model: str,
                     tracking_uri: str | None, partition: str, worker_memory: str | None,
                     strict: bool, quarantine: Path | None,
                     say: Callable[[str], None] = print) -> ScoringJob:
    """``illicitflows score transactions --cluster``: the registered detector's scores of
    ``paths``, computed on the cluster and written to the folder ``out``."""
    configure(tracking_uri)
    detector, version = load_detector("transactions", model)
    with connect(ClusterSpec.parse(cluster, worker_memory), say=say) as client:
        job = score_transactions(client, paths, out, detector, parse_period(partition), strict,
                                 quarantine or Path(out) / "quarantine")
    say(f"{job.rows:,} records scored by {version.name} v{version.version} in "
        f"{job.partitions} partitions: {job.flagged:,} flagged -> {job.out}"
        + (f"; {job.quarantined:,} bad rows quarantined" if job.quarantined else ""))
    return job
