"""``illicitflows export``: analysts' dispositions as training labels; goAML STR drafts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.cli.audit import AuditUrl
from illicitflows.cli.common import console
from illicitflows.jobs.feedback import export_labels
from illicitflows.reports.goaml.draft import DraftBuilder, GoamlConfig, GoamlError

app = typer.Typer(help="Export what analysts decided: training labels, goAML STR drafts.",
                  no_args_is_help=True)
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


@app.command("goaml")
def goaml(decision: Annotated[list[str], typer.Option(
              help="A decision id; repeat for several decisions in one report.")],
          out: Out, url: AuditUrl = None,
          entity: Annotated[Path | None, typer.Option(
              help="Reporting-entity file (YAML; default: $ILLICITFLOWS_GOAML_ENTITY or the "
                   "packaged placeholders).", exists=True, dir_okay=False)] = None,
          mapping: Annotated[Path | None, typer.Option(
              help="Lookup-code mapping (YAML; default: $ILLICITFLOWS_GOAML_MAPPING or the "
                   "packaged one).", exists=True, dir_okay=False)] = None,
          allow_unconfirmed: Annotated[bool, typer.Option(
              help="Write the draft even without a confirmed disposition, marked "
                   "UNCONFIRMED.")] = False) -> None:
    """A goAML suspicious transaction report draft, validated against the shipped XSD."""
    audit = AuditLog(url)
    dispositions = DispositionLog(audit.url)
    try:
        document = DraftBuilder(audit, dispositions, GoamlConfig.load(entity, mapping)).build(
            decision, allow_unconfirmed)
    except GoamlError as error:
        console.print(f"no draft written: {error}")
        raise typer.Exit(1) from error
    finally:
        dispositions.close()
        audit.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(document)
    console.print(f"goAML STR draft for {len(decision)} decision(s) written to {out} "
                  "(valid against the schema)")
