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
from illicitflows.reports.model_card import (
    CardMarkersError,
    card_numbers,
    generated_block,
    update_card,
)
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
               out: Annotated[Path | None, typer.Option(
                   help="Write the numbers to this Markdown file.", dir_okay=False)] = None,
               update: Annotated[Path | None, typer.Option(
                   help="Rewrite the generated block of this model card (between "
                        "<!-- registry:begin --> and <!-- registry:end -->), e.g. "
                        "models/transactions.md; the rest of the card is left as it is.",
                   exists=True, dir_okay=False)] = None,
               version: Annotated[str, typer.Option(help="Version number or alias.")]
               = "champion",
               tracking_uri: TrackingUri = None) -> None:
    """A model card's numbers from the registry (metrics beside the baseline, threshold,
    rows, data fingerprint, link to the model report): to a file, or into the card's
    generated block."""
    if detector not in ("transactions", "trade"):
        raise typer.BadParameter(f"detector must be transactions or trade, got {detector!r}")
    if (out is None) == (update is None):
        raise typer.BadParameter("give either --out FILE or --update CARD")
    configure(tracking_uri)
    try:
        text = card_numbers(model_name(detector), version)
    except LookupError as error:
        console.print(str(error))
        raise typer.Exit(1) from error
    if update is not None:
        try:
            changed = update_card(update, generated_block(detector, version, text))
        except CardMarkersError as error:
            console.print(str(error))
            raise typer.Exit(1) from error
        console.print(f"model card {update}: numbers of {model_name(detector)} {version} "
                      f"{'written' if changed else 'already current'}")
        return
    assert out is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console.print(f"model card numbers written to {out}")
