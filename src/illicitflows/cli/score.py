"""``illicitflows score``: score a file offline with the registered model, through the
service's own engine (:mod:`illicitflows.serving.offline`): the same validation, history state,
arrival rules, features, model and TreeSHAP reasons, optionally from a copy of the service's
history. ``--cluster`` scores a large transactions file on Dask instead."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from illicitflows.cli.common import (
    DEFAULT_PARTITION,
    Cluster,
    Partition,
    Quarantine,
    Strict,
    TrackingUri,
    WorkerMemory,
    console,
    default_quarantine,
)
from illicitflows.progress import progress_bar
from illicitflows.serving.arrival import Arrival
from illicitflows.serving.engine import ModelRef
from illicitflows.serving.offline import REQUEST_ROWS, HistorySource, score_file
from illicitflows.tracking.registry import CHAMPION, load_detector
from illicitflows.tracking.setup import configure
from illicitflows.trade.io import load_declarations
from illicitflows.transactions.io import load_transactions

app = typer.Typer(help="Score files offline with a registered detector.", no_args_is_help=True)
Data = Annotated[Path, typer.Option(help="Input file.", exists=True, dir_okay=False)]
Out = Annotated[Path, typer.Option(help="Output CSV: input columns + score, flagged, "
                                        "threshold, risk_band, reasons, repeat.")]
Model = Annotated[str, typer.Option(help="Registered alias or version.")]
History = Annotated[str | None, typer.Option(
    help="Start from this history, as the service would score the file: a history database "
         "URL or the service's data directory (its history and audit log). It is copied, "
         "never written. Default: no history.")]
Audit = Annotated[str | None, typer.Option(
    help="Audit log URL holding the decisions of --history (records it already decided are "
         "answered with them); default: the data directory's.")]


def _run(domain: str, frame: pd.DataFrame, out: Path, model: str, tracking_uri: str | None,
         history: str | None, audit: str | None) -> None:
    configure(tracking_uri)
    detector, version = load_detector(domain, model)
    ref = ModelRef(version.name, str(version.version), version.run_id)
    try:
        source = HistorySource.parse(history, audit)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    # a file is a back-fill: no clock-skew check; the lateness rules are the service's
    arrival = dataclasses.replace(Arrival.from_env(), clock_skew=None, clock_skew_days=None)
    requests = max(1, -(-len(frame) // REQUEST_ROWS))
    with progress_bar(f"score {domain}", requests) as step:
        try:
            columns = score_file(detector, ref, frame, source, arrival, step=step)
        except ValueError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from error
    scored = frame.assign(**{name: columns[name] for name in columns.columns})
    out.parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(out, index=False)
    repeats = int(scored["repeat"].sum())
    console.print(f"{len(scored):,} records scored by {version.name} v{version.version}: "
                  f"{int(scored['flagged'].sum()):,} flagged"
                  + (f", {repeats:,} already decided by the service" if repeats else "")
                  + f" -> {out}")


@app.command("transactions")
def transactions(data: Data, out: Out, model: Model = CHAMPION, tracking_uri: TrackingUri = None,
                 fmt: Annotated[str, typer.Option("--format")] = "auto", strict: Strict = False,
                 quarantine: Quarantine = None, history: History = None, audit: Audit = None,
                 cluster: Cluster = None, partition: Partition = DEFAULT_PARTITION,
                 worker_memory: WorkerMemory = None) -> None:
    """Score payment transactions (IBM CSV, AMLSim or Parquet). With --cluster, on Dask: --out
    is a folder of Parquet parts (one per time partition), bad rows go to --quarantine (a
    folder; default <out>/quarantine)."""
    if cluster is not None:
        from illicitflows.scale.scoring import score_on_cluster

        if history is not None:
            raise typer.BadParameter("--history is not available with --cluster (the "
                                     "distributed path scores a file as its own history)")

        score_on_cluster(cluster, [data], out, model, tracking_uri, partition, worker_memory,
                         strict, quarantine, say=console.print)
        return
    loaded = load_transactions(data, fmt, strict=strict,
                               quarantine=default_quarantine(data, quarantine))
    _run("transactions", loaded.frame, out, model, tracking_uri, history, audit)


@app.command("trade")
def trade(data: Data, out: Out, model: Model = CHAMPION, tracking_uri: TrackingUri = None,
          fmt: Annotated[str, typer.Option("--format")] = "auto", strict: Strict = False,
          quarantine: Quarantine = None, history: History = None, audit: Audit = None) -> None:
    """Score customs declarations (canonical, KCS or DATE). Declarations dated before the end
    of the detector's training data are refused, as the service refuses them."""
    frame, _ = load_declarations(data, fmt, strict=strict,
                                 quarantine=default_quarantine(data, quarantine))
    _run("trade", frame, out, model, tracking_uri, history, audit)
