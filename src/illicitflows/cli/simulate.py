"""``illicitflows simulate``: synthetic transactions and customs declarations."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from illicitflows.progress import progress_bar
from illicitflows.trade import simulate as trade_sim
from illicitflows.transactions import simulate as tx_sim

app = typer.Typer(help="Write synthetic data with injected, labelled illicit flows.",
                  no_args_is_help=True)
console = Console(stderr=True)

TimeStep = Enum("TimeStep", {name: name for name in tx_sim.TIME_STEPS}, type=str)
OutputFormat = Enum("OutputFormat", {"ibm": "ibm", "amlsim": "amlsim"}, type=str)

OutDir = Annotated[Path, typer.Option("--out", help="Directory to write into (created).")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")]


@app.command("transactions")
def transactions(
    out: OutDir,
    accounts: Annotated[int, typer.Option(help="Number of accounts.", min=10)] = 10_000,
    days: Annotated[int, typer.Option(help="Days of activity.", min=1)] = 10,
    laundering_rate: Annotated[float, typer.Option(
        help="Share of transactions that are laundering (HI-Small: about 0.001).",
        min=0.0, max=0.5)] = 0.001,
    seed: Seed = 0,
    transactions_per_account_day: Annotated[float, typer.Option(
        help="Background volume per account and day (AMLSim samples: about 0.04; scheduled "
             "payments are thinned to fit).", min=0.001)] = 1.0,
    time_step: Annotated[TimeStep, typer.Option(
        help="minute, or day: every timestamp on a whole day, as AMLSim's steps.")]
    = TimeStep.minute,
    pattern_span_scale: Annotated[float | None, typer.Option(
        help="Laundering attempts last this many times longer (default: 24 with --time-step "
             "day, so attempts of hours and days span days and weeks; else 1).", min=0.01)]
    = None,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="ibm (AMLworld CSV + patterns.txt) or amlsim (transactions.csv + "
        "accounts.csv, account labels only, no banks, currencies or formats).")]
    = OutputFormat.ibm,
) -> None:
    """Simulate payments (IBM AMLworld CSV, or AMLSim output) with laundering attempts."""
    scale = pattern_span_scale or (24.0 if time_step == TimeStep.day else 1.0)
    config = tx_sim.SimulationConfig(accounts=accounts, days=days,
                                     laundering_rate=laundering_rate, seed=seed,
                                     transactions_per_account_day=transactions_per_account_day,
                                     time_step=time_step.value, pattern_span_scale=scale)
    with progress_bar("simulate transactions", tx_sim.SIMULATION_STEPS + 1) as step:
        sim = tx_sim.simulate_transactions(config, progress=step)
        paths = tx_sim.write_simulation(sim, out, fmt.value)
        step("written")
    frame = sim.frame
    console.print(f"{len(frame):,} transactions, {int(frame['is_laundering'].sum()):,} laundering "
                  f"in {len(sim.attempts):,} attempts")
    for name, path in paths.items():
        console.print(f"  {name}: {path}")


@app.command("trade")
def trade(
    out: OutDir,
    declarations: Annotated[int, typer.Option(help="Number of declarations.", min=10)] = 50_000,
    fraud_rate: Annotated[float, typer.Option(help="Share of fraudulent declarations.",
                                              min=0.0, max=0.9)] = 0.08,
    mirror: Annotated[bool, typer.Option(help="Also write partner-country export statistics.")]
    = True,
    seed: Seed = 0,
) -> None:
    """Simulate customs import declarations with typed, labelled fraud."""
    config = trade_sim.TradeSimulationConfig(declarations=declarations, fraud_rate=fraud_rate,
                                             seed=seed)
    with progress_bar("simulate trade", trade_sim.SIMULATION_STEPS + 1) as step:
        sim = trade_sim.simulate_trade(config, progress=step)
        paths = trade_sim.write_trade_simulation(sim, out, mirror=mirror)
        step("written")
    frame = sim.declarations
    console.print(f"{len(frame):,} declarations, {int(frame['fraud'].sum()):,} fraudulent")
    for name, path in paths.items():
        console.print(f"  {name}: {path}")
