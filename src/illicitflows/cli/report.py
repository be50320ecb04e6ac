"""``illicitflows report``: a decision's standalone HTML report; a model card's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.cli.audit import AuditUrl
from illicitflows.cli.common import TrackingUri, console
from illicitflows.reports.decision import (
    DecisionNotFoundError,
    decision_context,
    render_decision_report,
)
from illicitflows.reports.model_card import card_numbers
from illicitflows.tracking.registry import model_name
from illicitflows.tracking.setup import configure

app = typer.Typer(help="Reports for analysts and auditors.", no_args_is_help=True)


@app.command("decision")
def decision(decision_id: Annotated[str, typer.Argument(help="The decision id.")],
             out: Annotated[Path, typer.Option(help="The HTML file to write.", dir_okay=False)],
             url: AuditUrl = None,
             base_url: Annotated[str, typer.Option(
                 help="Where the service runs, for the link to the model report.")]
             = "http://127.0.0.1:3000/v1") -> None:
    """Write one decision's standalone HTML report (one file, no external assets)."""
    audit = AuditLog(url)
    dispositions = DispositionLog(audit.url)
    try:
        context = decision_context(audit, dispositions, dispositions.engine, decision_id,
                                   base=base_url)
    except DecisionNotFoundError as error:
        console.print(str(error))
        raise typer.Exit(1) from error
    finally:
        dispositions.close()
        audit.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_decision_report(context), encoding="utf-8")
    console.print(f"decision report written to {out}")


@app.command("model-card")
def model_card(detector: Annotated[str, typer.Argument(help="transactions or trade.")],
               out: Annotated[Path, typer.Option(help="The Markdown file to write.",
                                                 dir_okay=False)],
               version: Annotated[str, typer.Option(help="Version number or alias.")]
               = "champion",
               tracking_uri: TrackingUri = None) -> None:
    """A model card's numbers from the registry (metrics beside the baseline, threshold,
    rows, data fingerprint, link to the model report), for models/<detector>.md."""
    if detector not in ("transactions", "trade"):
        raise typer.BadParameter(f"detector must be transactions or trade, got {detector!r}")
    configure(tracking_uri)
    try:
        text = card_numbers(model_name(detector), version)
    except LookupError as error:
        console.print(str(error))
        raise typer.Exit(1) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console.print(f"model card numbers written to {out}")
