"""Options and helpers shared by CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from illicitflows.settings import data_dir

console = Console(stderr=True)

TrackingUri = Annotated[str | None, typer.Option(
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite in the data dir).")]
Strict = Annotated[bool, typer.Option(help="Fail on any bad row instead of quarantining it.")]
Quarantine = Annotated[Path | None, typer.Option(
    help="Where bad rows go (CSV). Default: <data dir>/quarantine/<input>.quarantine.csv.")]
MetricsOut = Annotated[Path | None, typer.Option(help="Write the metrics document (JSON) here.")]


def default_quarantine(data: Path, quarantine: Path | None) -> Path:
    """The quarantine file for an input: given, or in the data directory's quarantine folder."""
    return quarantine or data_dir() / "quarantine" / f"{data.stem}.quarantine.csv"


def parse_pair(text: str | None, what: str) -> tuple[str, str] | None:
    """``"2021-01-01,2021-04-01"`` -> a pair, with a clear error."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise typer.BadParameter(f"{what} takes two comma-separated values, got {text!r}")
    return parts[0], parts[1]


def parse_fractions(text: str | None) -> tuple[float, float, float] | None:
    """``"0.6,0.2,0.2"`` -> three floats, with a clear error."""
    if text is None:
        return None
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError as error:
        raise typer.BadParameter(f"--split-fractions takes three numbers, got {text!r}") from error
    if len(values) != 3:
        raise typer.BadParameter(f"--split-fractions takes three numbers, got {text!r}")
    return values  # type: ignore[return-value]


def write_json(document: dict[str, Any], path: Path | None) -> None:
    """Write a JSON document (when a path is given)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str))
    console.print(f"metrics written to {path}")


#: ``--cluster`` as every command that touches many records takes it.
Cluster = Annotated[str | None, typer.Option(
    help="Compute on Dask: local (a cluster of worker processes), local:N (N workers) or a "
         "scheduler address tcp://HOST:8786. Without it, the single process.")]
Partition = Annotated[str, typer.Option(
    help="Time partition length (e.g. 1d, 12h, 7d): each partition also replays the feature "
         "horizon before it, so a worker holds about partition + horizon of transactions.")]
WorkerMemory = Annotated[str | None, typer.Option(
    help="Memory limit per worker of a local cluster (e.g. 6GB); default: Dask's share.")]
QuarantineDir = Annotated[Path | None, typer.Option(
    "--quarantine", help="Folder for bad rows (one CSV per input block with bad rows); "
                         "default: <out>/quarantine.")]
DEFAULT_PARTITION = "7d"
