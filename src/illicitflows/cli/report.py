"""``illicitflows report``: a decision's standalone HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.cli.audit import AuditUrl
from illicitflows.cli.common import console
from illicitflows.reports.decision import (
    DecisionNotFoundError,
    decision_context,
    render_decision_report,
)

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
