"""The ``illicitflows`` command line: one app, one sub-command group per verb."""

from __future__ import annotations

import typer

from illicitflows.cli import (
    audit,
    export,
    features,
    keys,
    promote,
    report,
    review,
    score,
    serve,
    simulate,
    train,
    validate,
)

app = typer.Typer(
    help="Flag illicit financial flows: asset laundering in payments, mis-invoicing in customs "
         "declarations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(simulate.app, name="simulate")
app.add_typer(validate.app, name="validate")
app.add_typer(features.app, name="features")
app.add_typer(train.app, name="train")
app.add_typer(promote.app, name="promote")
app.add_typer(score.app, name="score")
app.add_typer(review.app, name="review")
app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(export.app, name="export")
app.add_typer(report.app, name="report")
