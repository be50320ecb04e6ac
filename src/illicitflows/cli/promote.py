"""``illicitflows promote``: move the champion alias through the metric gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.cli.common import TrackingUri, console
from illicitflows.jobs.config import (
    PipelineBase,
    TradePipeline,
    TransactionsPipeline,
    load_pipeline,
)
from illicitflows.tracking.registry import promote
from illicitflows.tracking.setup import configure

app = typer.Typer(help="Promote a challenger to champion when it beats the champion.",
                  no_args_is_help=True)

Force = Annotated[bool, typer.Option(help="Promote even if the gate refuses (needs --reason).")]
Reason = Annotated[str | None, typer.Option(help="Why a forced promotion is justified.")]


def _promote(domain: str, metric: str, force: bool, reason: str | None,
             tracking_uri: str | None) -> None:
    configure(tracking_uri)
    decision = promote(domain, metric, force=force, reason=reason)
    verb = "promoted" if decision.promoted else "not promoted"
    console.print(f"{domain}: challenger v{decision.challenger} {verb} "
                  f"(champion was v{decision.champion}): {decision.reason}")
    if not decision.promoted:
        raise typer.Exit(1)


Metric = Annotated[str | None, typer.Option(
    help="Test metric to compare (default: the pipeline's promotion_metric).")]
Config = Annotated[Path | None, typer.Option(help="Pipeline YAML naming the promotion metric.")]


def _metric(metric: str | None, config: Path, kind: type[PipelineBase]) -> str:
    return metric or load_pipeline(config, kind).promotion_metric


@app.command("transactions")
def transactions(force: Force = False, reason: Reason = None, tracking_uri: TrackingUri = None,
                 metric: Metric = None, config: Config = None) -> None:
    """Promote the asset-laundering detector's challenger."""
    chosen = _metric(metric, config or Path("pipelines/transactions.yaml"), TransactionsPipeline)
    _promote("transactions", chosen, force, reason, tracking_uri)


@app.command("trade")
def trade(force: Force = False, reason: Reason = None, tracking_uri: TrackingUri = None,
          metric: Metric = None, config: Config = None) -> None:
    """Promote the customs detector's challenger."""
    chosen = _metric(metric, config or Path("pipelines/trade.yaml"), TradePipeline)
    _promote("trade", chosen, force, reason, tracking_uri)
