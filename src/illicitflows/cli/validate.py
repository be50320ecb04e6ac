"""``illicitflows validate``: check an input file against its schema, quarantine bad rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from illicitflows.cli.common import Quarantine, Strict, console, default_quarantine
from illicitflows.progress import progress_bar
from illicitflows.trade.io import load_declarations
from illicitflows.transactions.io import load_transactions
from illicitflows.validation import ValidationError, ValidationResult

app = typer.Typer(help="Validate input files: every bad row is named with its column and reason.",
                  no_args_is_help=True)
Out = Annotated[Path | None, typer.Option(help="Write the accepted rows here (.csv or .parquet).")]
Loader = Callable[[Path], tuple[pd.DataFrame, ValidationResult]]


def report(result: ValidationResult, accepted: int, quarantine: Path) -> None:
    """Print a summary table of issues per column and reason."""
    table = Table(title=f"{result.schema}: {len(result.frame):,} rows read, {accepted:,} accepted, "
                        f"{len(result.bad_rows):,} quarantined")
    for name in ("severity", "column", "reason", "count"):
        table.add_column(name)
    for row in result.summary()["issues"]:
        table.add_row(row["severity"], row["column"], row["reason"], f"{row['count']:,}")
    console.print(table)
    if len(result.bad_rows):
        console.print(f"bad rows written to {quarantine}")


def run(load: Loader, quarantine: Path, out: Path | None) -> None:
    """Load with the policy, report, optionally write the accepted rows."""
    try:
        with progress_bar("validate", 1) as step:
            frame, result = load(quarantine)
            step("checked")
    except ValidationError as error:
        console.print(str(error))
        raise typer.Exit(1) from error
    report(result, len(frame), quarantine)
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)


@app.command("transactions")
def transactions(
    data: Annotated[Path, typer.Argument(help="IBM AMLworld CSV, AMLSim transactions.csv or "
                                              "canonical Parquet.", exists=True)],
    fmt: Annotated[str, typer.Option("--format", help="ibm, amlsim, parquet or auto.")] = "auto",
    accounts: Annotated[Path | None, typer.Option(help="AMLSim accounts/nodes file.")] = None,
    strict: Strict = False,
    quarantine: Quarantine = None,
    out: Out = None,
) -> None:
    """Validate a transactions file."""
    def load(target: Path) -> tuple[pd.DataFrame, ValidationResult]:
        loaded = load_transactions(data, fmt, accounts, strict=strict, quarantine=target)
        return loaded.frame, loaded.validation

    run(load, default_quarantine(data, quarantine), out)


@app.command("trade")
def trade(
    data: Annotated[Path, typer.Argument(help="Canonical, KCS or DATE declarations file.",
                                         exists=True)],
    fmt: Annotated[str, typer.Option("--format", help="canonical, kcs, date or auto.")] = "auto",
    strict: Strict = False,
    quarantine: Quarantine = None,
    out: Out = None,
) -> None:
    """Validate a customs declarations file."""
    run(lambda target: load_declarations(data, fmt, strict=strict, quarantine=target),
        default_quarantine(data, quarantine), out)
