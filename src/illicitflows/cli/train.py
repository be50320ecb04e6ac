"""``illicitflows train``: run a detector's training pipeline, tracked in MLflow."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from illicitflows.cli.common import (
    DEFAULT_PARTITION,
    Cluster,
    MetricsOut,
    Partition,
    Quarantine,
    Strict,
    TrackingUri,
    WorkerMemory,
    console,
    default_quarantine,
    parse_fractions,
    parse_pair,
    write_json,
)
from illicitflows.jobs import train_trade as trade_job
from illicitflows.jobs.config import (
    PipelineBase,
    TradePipeline,
    TransactionsPipeline,
    load_pipeline,
)
from illicitflows.jobs.train_transactions import (
    BASELINES,
    TRAIN_STEPS,
    TrainRequest,
    train_transactions,
)
from illicitflows.progress import progress_bar

app = typer.Typer(help="Train a detector; the model is registered with alias 'challenger'.",
                  no_args_is_help=True)

TransactionsBaseline = Enum("TransactionsBaseline", {name: name for name in BASELINES},
                            type=str)  # a typer choice: unknown names fail at parse time

SplitFractions = Annotated[str | None, typer.Option(
    help="Temporal split by whole days, e.g. 0.6,0.2,0.2 (overrides the config).")]
SplitDates = Annotated[str | None, typer.Option(
    help="Cut-off dates VALID_FROM,TEST_FROM, e.g. 2022-09-07,2022-09-09.")]
Labels = Annotated[Path | None, typer.Option(
    help="Analysts' labels from 'illicitflows export labels': override the labels of the same "
         "records, add the others.", exists=True, dir_okay=False)]


def with_split(pipeline: PipelineBase, fractions: str | None,
               dates: str | None) -> PipelineBase:
    """The pipeline with the split given on the command line, if any."""
    pair, shares = parse_pair(dates, "--split-dates"), parse_fractions(fractions)
    if not (pair or shares):
        return pipeline
    split = pipeline.split.model_copy(update={"dates": pair} if pair else
                                      {"fractions": shares, "dates": None})
    return pipeline.model_copy(update={"split": split})


def report(document: dict) -> None:
    """Print the model's and baseline's headline metrics and the registered version."""
    test = document["test"]
    headline = ("f1", "precision", "recall", "pr_auc") if "f1" in test else ("pr_auc", "roc_auc")
    console.print("test " + "  ".join(f"{k} {test[k]:.3f}" for k in headline)
                  + f"  threshold {document['threshold']:.4f}")
    if "precision_at" in test:
        console.print("precision@n%: " + "  ".join(f"{n}% {v:.3f}"
                                                   for n, v in test["precision_at"].items()))
    if "baseline" in document:
        base = document["baseline"]
        console.print(f"baseline {base['name']}: " + "  ".join(
            f"{k} {base['test'][k]:.3f}" for k in headline if k in base["test"]))
    if "analyst_labels" in document:
        given = document["analyst_labels"]
        console.print(f"analysts' labels: {given['overridden']} overridden ({given['changed']} "
                      f"changed), {given['added']} added")
    model = document["model"]
    console.print(f"registered {model['name']} version {model['version']} (challenger), "
                  f"run {model['run_id']}")


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
    baseline: Annotated[TransactionsBaseline | None, typer.Option(
        help="Also train the peer on the same split: gfp (IBM Graph Feature Preprocessor). "
             "Any other name is refused before training.")] = None,
    metrics_out: MetricsOut = None,
    tracking_uri: TrackingUri = None,
    strict: Strict = False,
    quarantine: Quarantine = None,
    labels: Labels = None,
    cluster: Cluster = None,
    partition: Partition = DEFAULT_PARTITION,
    worker_memory: WorkerMemory = None,
) -> None:
    """Train the asset-laundering detector on labelled transactions (with --cluster: features
    and LightGBM on Dask; bad rows then go to the --quarantine folder)."""
    pipeline = with_split(load_pipeline(config, TransactionsPipeline), split_fractions,
                          split_dates)
    request = TrainRequest(data=data, pipeline=pipeline, fmt=fmt, accounts=accounts,
                           patterns=patterns, baseline=baseline.value if baseline else None,
                           tracking_uri=tracking_uri,
                           quarantine=default_quarantine(data, quarantine), strict=strict,
                           labels=labels)
    if cluster is not None:
        from illicitflows.scale.training import train_with_cluster

        document = train_with_cluster(cluster, request, partition, worker_memory,
                                      say=console.print)
    else:
        with progress_bar("train transactions", TRAIN_STEPS) as step:
            document = train_transactions(request, progress=step)
    report(document)
    write_json(document, metrics_out)


@app.command("trade")
def trade(
    data: Annotated[list[Path], typer.Option(
        help="Declarations (canonical, KCS or DATE); repeat to concatenate files.",
        exists=True, dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", help="canonical, kcs, date or auto.")] = "auto",
    config: Annotated[Path, typer.Option(help="Pipeline YAML.", exists=True)] = Path(
        "pipelines/trade.yaml"),
    split_fractions: SplitFractions = None,
    split_dates: SplitDates = None,
    baseline: Annotated[str | None, typer.Option(
        help="Also train the peer on the same split: lightgbm-raw.")] = None,
    mirror: Annotated[Path | None, typer.Option(
        help="Partner-country exports for mirror-gap features.", exists=True)] = None,
    metrics_out: MetricsOut = None,
    tracking_uri: TrackingUri = None,
    strict: Strict = False,
    quarantine: Quarantine = None,
    labels: Labels = None,
) -> None:
    """Train the customs mis-invoicing detector on labelled declarations."""
    pipeline = with_split(load_pipeline(config, TradePipeline), split_fractions, split_dates)
    # one input: its own default file; several (or a mirror file): one file per input,
    # named after the run (see trade_job.quarantine_for)
    named_after = data[0] if len(data) == 1 and mirror is None else Path("train-trade")
    request = trade_job.TrainTradeRequest(
        data=data, pipeline=pipeline, fmt=fmt, mirror=mirror, baseline=baseline,
        tracking_uri=tracking_uri, quarantine=default_quarantine(named_after, quarantine),
        strict=strict, labels=labels)
    with progress_bar("train trade", trade_job.TRAIN_STEPS) as step:
        document = trade_job.train_trade(request, progress=step)
    for path, rows in document["quarantine_files"].items():
        console.print(f"{rows:,} bad row(s) quarantined in {path}")
    report(document)
    report_ranking(document)
    write_json(document, metrics_out)


def report_ranking(document: dict) -> None:
    """The trade ranking served and the revenue it recovers per inspection rate."""
    ranking = document.get("ranking")
    if not ranking:
        return
    served = ranking["policy"]
    note = f" (exponent {ranking['exponent']:g})" if served == "expected-revenue" else ""
    if served != ranking["configured"]:
        why = ranking.get("note", "no exponent held the precision guard")
        note = f" (configured {ranking['configured']}: {why})"
    console.print(f"ranking {served}{note}; revenue recovered@n%: " + "  ".join(
        f"{n}% {v:.3f}" for n, v in document["test"]["revenue_at"].items()))
