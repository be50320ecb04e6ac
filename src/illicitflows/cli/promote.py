"""``illicitflows promote``: move the champion alias through the metric gate."""

from __future__ import annotations

from typing import Annotated

import typer

from illicitflows.cli.common import TrackingUri, console
from illicitflows.jobs.config import TransactionsPipeline, load_pipeline
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


@app.command("transactions")
def transactions(force: Force = False, reason: Reason = None, tracking_uri: TrackingUri = None,
                 metric: Annotated[str | None, typer.Option(
                     help="Test metric to compare (default: the pipeline's promotion_metric).")]
                 = None) -> None:
    """Promote the asset-laundering detector's challenger."""
    default = load_pipeline("pipelines/transactions.yaml", TransactionsPipeline).promotion_metric \
        if metric is None else metric
    _promote("transactions", default, force, reason, tracking_uri)
