"""``illicitflows export``: analysts' dispositions as training labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.cli.audit import AuditUrl
from illicitflows.cli.common import console
from illicitflows.jobs.feedback import export_labels

app = typer.Typer(help="Export what analysts decided: training labels.", no_args_is_help=True)
Detector = Annotated[str, typer.Option(help="transactions or trade.")]
Out = Annotated[Path, typer.Option(help="The file to write.", dir_okay=False)]


@app.command("labels")
def labels(detector: Detector, out: Out, url: AuditUrl = None) -> None:
    """Records of dispositioned decisions with their label (confirmed = 1, dismissed = 0), in
    the detector's training format, for 'train ... --labels FILE'."""
    if detector not in ("transactions", "trade"):
        raise typer.BadParameter(f"--detector must be transactions or trade, got {detector!r}")
    audit = AuditLog(url)
    dispositions = DispositionLog(audit.url)
    try:
        written = export_labels(audit, dispositions, detector, out)
    finally:
        dispositions.close()
        audit.close()
    console.print(f"{written} labelled {detector} record(s) written to {out}")
