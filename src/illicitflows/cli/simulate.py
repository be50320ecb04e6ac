"""``illicitflows simulate``: synthetic transactions and customs declarations."""

from __future__ import annotations

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
) -> None:
    """Simulate payments (IBM AMLworld CSV) with laundering attempts (IBM patterns.txt)."""
    config = tx_sim.SimulationConfig(accounts=accounts, days=days,
                                     laundering_rate=laundering_rate, seed=seed)
    with progress_bar("simulate transactions", tx_sim.SIMULATION_STEPS + 1) as step:
        sim = tx_sim.simulate_transactions(config, progress=step)
        paths = tx_sim.write_simulation(sim, out)
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
