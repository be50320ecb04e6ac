"""``illicitflows review``: the retrospective account review of a period (not real-time
scoring): the accounts active in the period ranked with everything known up to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from illicitflows.cli.common import Quarantine, Strict, TrackingUri, console, default_quarantine
from illicitflows.jobs.account_review import review_accounts
from illicitflows.tracking.registry import CHAMPION, load_detector
from illicitflows.tracking.setup import configure
from illicitflows.transactions.io import load_transactions

app = typer.Typer(help="Review the accounts of a period (retrospective, not real-time).",
                  no_args_is_help=True)


def _moment(text: str, option: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as error:
        raise typer.BadParameter(f"{option} takes a date or time, e.g. 2024-03-01; got "
                                 f"{text!r}") from error


@app.command("transactions")
def transactions(
    data: Annotated[Path, typer.Option(help="Transactions up to the period's end and the "
                                            "history before it: IBM CSV, AMLSim or Parquet.",
                                       exists=True, dir_okay=False)],
    start: Annotated[str, typer.Option("--from", help="First moment of the period, e.g. "
                                                      "2024-03-01.")],
    end: Annotated[str, typer.Option("--to", help="End of the period (not included), e.g. "
                                                  "2024-04-01; nothing from then on is read.")],
    out: Annotated[Path, typer.Option(help="Output: .json (records) or .csv, one row per "
                                           "account, best first.")],
    model: Annotated[str, typer.Option(help="Registered alias or version.")] = CHAMPION,
    top: Annotated[int | None, typer.Option(help="Keep the first N accounts only.", min=1)]
    = None,
    fmt: Annotated[str, typer.Option("--format", help="ibm, amlsim, parquet or auto.")] = "auto",
    accounts: Annotated[Path | None, typer.Option(help="AMLSim accounts file.", exists=True)]
    = None,
    tracking_uri: TrackingUri = None,
    strict: Strict = False,
    quarantine: Quarantine = None,
) -> None:
    """Rank the accounts active in [FROM, TO) with reasons and the networks they form."""
    period = _moment(start, "--from"), _moment(end, "--to")
    loaded = load_transactions(data, fmt, accounts, strict=strict,
                               quarantine=default_quarantine(data, quarantine))
    configure(tracking_uri)
    detector, version = load_detector("transactions", model)
    try:
        reviewed = review_accounts(detector, loaded.frame, *period, top=top)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".json":
        out.write_text(reviewed.to_json(orient="records", indent=1))
    else:
        reviewed.to_csv(out, index=False)
    console.print(f"{len(reviewed):,} accounts reviewed by {version.name} v{version.version}, "
                  f"{int(reviewed['flagged'].sum()):,} flagged in "
                  f"{reviewed['network'].replace('', pd.NA).nunique()} networks -> {out}")
