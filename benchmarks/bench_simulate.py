"""Time the transactions simulator at IBM HI-Small scale and print one JSON object.

    .venv/bin/python benchmarks/bench_simulate.py                  # 500k accounts, 10 days
    .venv/bin/python benchmarks/bench_simulate.py --transactions 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from illicitflows.transactions.simulate import (
    SimulationConfig,
    simulate_transactions,
    write_simulation,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=None,
                        help="target row count; sets --accounts from --days")
    parser.add_argument("--accounts", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="directory to write into (default: a temporary one)")
    return parser.parse_args()


def config_from(args: argparse.Namespace) -> SimulationConfig:
    """The simulation config; ``--transactions`` wins over ``--accounts``."""
    per_account = SimulationConfig.transactions_per_account_day * args.days
    accounts = (round(args.transactions / per_account) if args.transactions
                else args.accounts)
    return SimulationConfig(accounts=accounts, days=args.days, seed=args.seed)


def run(config: SimulationConfig, out: Path) -> dict[str, float | int]:
    """Generate, then write; the seconds of each, rows and peak memory."""
    started = time.perf_counter()
    sim = simulate_transactions(config)
    generated = time.perf_counter()
    write_simulation(sim, out)
    written = time.perf_counter()
    rows = len(sim.frame)
    return {
        "accounts": config.accounts,
        "days": config.days,
        "rows": rows,
        "laundering_rows": int(sim.frame["is_laundering"].sum()),
        "attempts": len(sim.attempts),
        "generate_s": round(generated - started, 2),
        "write_s": round(written - generated, 2),
        "total_s": round(written - started, 2),
        "rows_per_s": round(rows / (written - started)),
        "csv_mb": round((out / "transactions.csv").stat().st_size / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    args = parse_args()
    config = config_from(args)
    if args.out is not None:
        print(json.dumps(run(config, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(config, Path(tmp))))


if __name__ == "__main__":
    main()
