"""``illicitflows audit``: verify the decision log's hash chain, replay a decision."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.cli.common import TrackingUri, console
from illicitflows.progress import progress_bar
from illicitflows.serving.replay import replay_decision
from illicitflows.settings import data_dir
from illicitflows.tracking.setup import configure

app = typer.Typer(help="Audit the decision log.", no_args_is_help=True)
AuditUrl = Annotated[str | None, typer.Option(help="Audit database URL (default: sqlite in the "
                                                   "data dir, or $ILLICITFLOWS_AUDIT_URL).",
                                              envvar="ILLICITFLOWS_AUDIT_URL")]


@app.command("verify")
def verify(url: AuditUrl = None) -> None:
    """Check every row's hash and link; name the first edited, inserted or deleted row."""
    with progress_bar("verify audit log", 2) as step:
        log = AuditLog(url)
        report = log.verify()
        step("decisions verified")
        checked = DispositionLog(log.url).verify()
        step("dispositions verified")
    if not report.ok:
        console.print(f"audit log BROKEN at seq {report.first_bad_seq} (decision "
                      f"{report.first_bad_decision_id}): {report.problem}")
        raise typer.Exit(1)
    if not checked.ok:
        console.print(f"audit log BROKEN at disposition {checked.first_bad_seq}: "
                      f"{checked.problem}")
        raise typer.Exit(1)
    console.print(f"audit log intact: {report.checked:,} decisions and {checked.checked:,} "
                  "dispositions verified")


@app.command("replay")
def replay(decision_id: Annotated[str, typer.Argument(help="The decision id.")],
           url: AuditUrl = None, tracking_uri: TrackingUri = None,
           history_url: Annotated[str | None, typer.Option(
               help="History database URL (default: sqlite in the data dir).",
               envvar="ILLICITFLOWS_HISTORY_URL")] = None) -> None:
    """Re-score a decision with its recorded model version and history; exit 1 on mismatch."""
    configure(tracking_uri)
    report = replay_decision(decision_id, AuditLog(url),
                             history_url or f"sqlite:///{data_dir() / 'history.db'}")
    verdict = "MATCHES" if report.ok else "DIFFERS"
    console.print(f"decision {decision_id} ({report.model}): replay {verdict}; score logged "
                  f"{report.logged_score:.12f}, replayed {report.replayed_score:.12f}; reasons "
                  f"logged {report.logged_reasons}, replayed {report.replayed_reasons}")
    typer.echo(json.dumps(report.explanation["reasons"], indent=2))
    if not report.ok:
        raise typer.Exit(1)
