"""``illicitflows features``: the causal feature matrix of a large input, computed over time
partitions on a Dask cluster and written as Parquet (one file per partition)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.cli.common import (
    DEFAULT_PARTITION,
    Cluster,
    Partition,
    QuarantineDir,
    Strict,
    TrackingUri,
    WorkerMemory,
    console,
)
from illicitflows.jobs.config import TransactionsPipeline, load_pipeline

app = typer.Typer(help="Compute feature matrices at scale (Dask).", no_args_is_help=True)



@app.command("transactions")
def transactions(
    data: Annotated[list[Path], typer.Option(
        help="One IBM CSV, several (concatenated in order; repeat --data) or a Parquet "
             "dataset (file or folder).", exists=True)],
    out: Annotated[Path, typer.Option(help="Output folder: part-<partition start>.parquet "
                                           "with row, timestamp and the catalogue's features.")],
    cluster: Cluster = "local",
    partition: Partition = DEFAULT_PARTITION,
    config: Annotated[Path, typer.Option(help="Pipeline YAML (its features section).",
                                         exists=True)] = Path("pipelines/transactions.yaml"),
    model: Annotated[str | None, typer.Option(
        help="Registered alias or version: its feature builder (rates, configuration and "
             "risk-memory models) instead of --config.")] = None,
    worker_memory: WorkerMemory = None,
    tracking_uri: TrackingUri = None,
    strict: Strict = False,
    quarantine: QuarantineDir = None,
) -> None:
    """Transaction features of every record, exact as one pass, on a Dask cluster."""
    from illicitflows.scale.cluster import ClusterSpec, connect
    from illicitflows.scale.features import build_features
    from illicitflows.scale.source import parse_period
    from illicitflows.transactions.features import TransactionFeatureBuilder

    if model is not None:
        from illicitflows.tracking.registry import load_detector
        from illicitflows.tracking.setup import configure

        configure(tracking_uri)
        builder = load_detector("transactions", model)[0].builder
    else:
        builder = TransactionFeatureBuilder(load_pipeline(config, TransactionsPipeline).features)
    spec = ClusterSpec.parse(cluster or "local", worker_memory)
    with connect(spec, say=console.print) as client:
        job = build_features(client, data, out, builder, parse_period(partition), strict,
                             quarantine or out / "quarantine")
    console.print(f"{job.rows:,} transactions, {job.partitions} partitions -> {job.out}"
                  + (f"; {job.quarantined:,} bad rows quarantined" if job.quarantined else ""))
