"""Time the trade simulator: prints one JSON line (rows, seconds, rows_per_s)."""

from __future__ import annotations

import argparse
import json
import time

from illicitflows.trade.simulate import TradeSimulationConfig, simulate_trade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = TradeSimulationConfig(declarations=args.rows, seed=args.seed)
    started = time.perf_counter()
    sim = simulate_trade(config)
    seconds = time.perf_counter() - started
    rows = len(sim.declarations)
    print(json.dumps({"rows": rows, "seconds": round(seconds, 3),
                      "rows_per_s": round(rows / seconds)}))


if __name__ == "__main__":
    main()
