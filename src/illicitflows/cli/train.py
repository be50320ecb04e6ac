"""``illicitflows train``: run a detector's training pipeline, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from illicitflows.cli.common import (
    MetricsOut,
    Quarantine,
    Strict,
    TrackingUri,
    console,
    default_quarantine,
    parse_fractions,
    parse_pair,
    write_json,
)
from illicitflows.jobs.config import TransactionsPipeline, load_pipeline
from illicitflows.jobs.train_transactions import TRAIN_STEPS, TrainRequest, train_transactions
from illicitflows.progress import progress_bar

app = typer.Typer(help="Train a detector; the model is registered with alias 'challenger'.",
                  no_args_is_help=True)

SplitFractions = Annotated[str | None, typer.Option(
    help="Temporal split by whole days, e.g. 0.6,0.2,0.2 (overrides the config).")]
SplitDates = Annotated[str | None, typer.Option(
    help="Cut-off dates VALID_FROM,TEST_FROM, e.g. 2022-09-07,2022-09-09.")]


@app.command("transactions")
def transactions(
    data: Annotated[Path, typer.Option(help="Transactions: IBM CSV, AMLSim, or Parquet.",
                                       exists=True, dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", help="ibm, amlsim, parquet or auto.")] = "auto",
    accounts: Annotated[Path | None, typer.Option(help="AMLSim accounts file (labels).",
                                                  exists=True)] = None,
    patterns: Annotated[Path | None, typer.Option(help="IBM patterns.txt: recall per typology.",
                                                  exists=True)] = None,
    config: Annotated[Path, typer.Option(help="Pipeline YAML.", exists=True)] = Path(
        "pipelines/transactions.yaml"),
    split_fractions: SplitFractions = None,
    split_dates: SplitDates = None,
    baseline: Annotated[str | None, typer.Option(
        help="Also train the peer on the same split: gfp (IBM Graph Feature Preprocessor).")]
    = None,
    metrics_out: MetricsOut = None,
    tracking_uri: TrackingUri = None,
    strict: Strict = False,
    quarantine: Quarantine = None,
) -> None:
    """Train the asset-laundering detector on labelled transactions."""
    pipeline = load_pipeline(config, TransactionsPipeline)
    dates, fractions = parse_pair(split_dates, "--split-dates"), parse_fractions(split_fractions)
    if dates or fractions:
        split = pipeline.split.model_copy(update={"dates": dates} if dates else
                                          {"fractions": fractions, "dates": None})
        pipeline = pipeline.model_copy(update={"split": split})
    request = TrainRequest(data=data, pipeline=pipeline, fmt=fmt, accounts=accounts,
                           patterns=patterns, baseline=baseline, tracking_uri=tracking_uri,
                           quarantine=default_quarantine(data, quarantine), strict=strict)
    with progress_bar("train transactions", TRAIN_STEPS) as step:
        document = train_transactions(request, progress=step)
    test = document["test"]
    console.print(f"test F1 {test['f1']:.3f}  precision {test['precision']:.3f}  recall "
                  f"{test['recall']:.3f}  PR-AUC {test['pr_auc']:.3f}  threshold "
                  f"{document['threshold']:.4f}")
    if "baseline" in document:
        base = document["baseline"]["test"]
        console.print(f"baseline {document['baseline']['name']}: F1 {base['f1']:.3f}  PR-AUC "
                      f"{base['pr_auc']:.3f}")
    model = document["model"]
    console.print(f"registered {model['name']} version {model['version']} (challenger), "
                  f"run {model['run_id']}")
    write_json(document, metrics_out)
