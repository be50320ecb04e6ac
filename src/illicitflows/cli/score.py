"""``illicitflows score``: score a file offline with the registered model (same code path as
the service: validation, causal features, model, TreeSHAP reasons)."""

from __future__ import annotations

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
from illicitflows.modeling.detector import Detector
from illicitflows.progress import progress_bar
from illicitflows.serving.engine import decision_columns
from illicitflows.tracking.registry import CHAMPION, load_detector
from illicitflows.tracking.setup import configure
from illicitflows.trade.io import load_declarations
from illicitflows.transactions.io import load_transactions

app = typer.Typer(help="Score files offline with a registered detector.", no_args_is_help=True)
Data = Annotated[Path, typer.Option(help="Input file.", exists=True, dir_okay=False)]
Out = Annotated[Path, typer.Option(help="Output CSV: input columns + score, flag, reasons.")]
Model = Annotated[str, typer.Option(help="Registered alias or version.")]


def score_frame(detector: Detector, frame: pd.DataFrame, step) -> pd.DataFrame:
    """Scores, flags, risk bands and (flagged) top reasons appended to ``frame``."""
    features = detector.features(frame)
    step("features")
    columns = decision_columns(detector, features)
    step("explained")
    return frame.assign(**columns)


def _run(domain: str, frame: pd.DataFrame, out: Path, model: str,
         tracking_uri: str | None) -> None:
    configure(tracking_uri)
    detector, version = load_detector(domain, model)
    with progress_bar(f"score {domain}", 2) as step:
        scored = score_frame(detector, frame, step)
    out.parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(out, index=False)
    console.print(f"{len(scored):,} records scored by {version.name} v{version.version}: "
                  f"{int(scored['flagged'].sum()):,} flagged -> {out}")


@app.command("transactions")
def transactions(data: Data, out: Out, model: Model = CHAMPION, tracking_uri: TrackingUri = None,
                 fmt: Annotated[str, typer.Option("--format")] = "auto", strict: Strict = False,
                 quarantine: Quarantine = None, cluster: Cluster = None,
                 partition: Partition = DEFAULT_PARTITION,
                 worker_memory: WorkerMemory = None) -> None:
    """Score payment transactions (IBM CSV, AMLSim or Parquet). With --cluster, on Dask: --out
    is a folder of Parquet parts (one per time partition), bad rows go to --quarantine (a
    folder; default <out>/quarantine)."""
    if cluster is not None:
        from illicitflows.scale.scoring import score_on_cluster

        score_on_cluster(cluster, [data], out, model, tracking_uri, partition, worker_memory,
                         strict, quarantine, say=console.print)
        return
    loaded = load_transactions(data, fmt, strict=strict,
                               quarantine=default_quarantine(data, quarantine))
    _run("transactions", loaded.frame, out, model, tracking_uri)


@app.command("trade")
def trade(data: Data, out: Out, model: Model = CHAMPION, tracking_uri: TrackingUri = None,
          fmt: Annotated[str, typer.Option("--format")] = "auto", strict: Strict = False,
          quarantine: Quarantine = None) -> None:
    """Score customs declarations (canonical, KCS or DATE)."""
    frame, _ = load_declarations(data, fmt, strict=strict,
                                 quarantine=default_quarantine(data, quarantine))
    _run("trade", frame, out, model, tracking_uri)
