"""Throughput of our transaction features against IBM's Graph Feature Preprocessor (GFP).

Simulates the transactions once (a random frame if the simulator is unavailable), then times
``TransactionFeatureBuilder().fit(frame).transform(frame)`` and ``GraphFeaturePeer().build(frame)``
once each, after a warm-up on 1,000 rows (numba compilation, snapml loading). Prints one JSON
line: rows, seconds, rows per second and peak RSS of each, and ours / GFP throughput.
GFP's time grows much faster than the row count on simulated data (its hub accounts get
thousands of payments a day): expect minutes at 200,000 rows and hours at the default 1,000,000.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from illicitflows.modeling.gfp import GraphFeaturePeer
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.schema import PAYMENT_FORMATS, USD_PER_UNIT

DAYS = 10
WARM_UP_ROWS = 1_000
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def load_frame(transactions: int, seed: int) -> tuple[pd.DataFrame, str]:
    """About ``transactions`` simulated rows over :data:`DAYS` days, or random ones."""
    try:
        from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions
    except ImportError:
        return random_frame(transactions, seed), "random"
    config = SimulationConfig(accounts=max(1, transactions // DAYS), days=DAYS, seed=seed)
    return simulate_transactions(config).frame, "simulated"


def random_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` transactions between uniformly random accounts, about one per account and day."""
    rng = np.random.default_rng(seed)
    accounts = max(2, n // DAYS)
    seconds = np.sort(rng.integers(0, DAYS * 86_400 // 60, n)) * 60
    currencies = np.array(sorted(USD_PER_UNIT))[rng.integers(0, len(USD_PER_UNIT), n)]
    amount = np.round(rng.lognormal(5.0, 1.5, n), 2)
    frame = pd.DataFrame({"timestamp": pd.Timestamp("2022-09-01")
                          + pd.to_timedelta(seconds, unit="s")})
    for side in ("from", "to"):
        ids = rng.integers(0, accounts, n)
        frame[f"{side}_bank"] = pd.Series([f"{i % 300:05d}" for i in ids], dtype="str")
        frame[f"{side}_account"] = pd.Series([f"{i:09X}" for i in ids], dtype="str")
    frame["amount_received"] = amount
    frame["receiving_currency"] = pd.Series(currencies, dtype="str")
    frame["amount_paid"] = amount
    frame["payment_currency"] = pd.Series(currencies, dtype="str")
    formats = np.array(sorted(PAYMENT_FORMATS))[rng.integers(0, len(PAYMENT_FORMATS), n)]
    frame["payment_format"] = pd.Series(formats, dtype="str")
    frame["is_laundering"] = np.zeros(n, dtype=np.int8)
    return frame


def ours(frame: pd.DataFrame) -> pd.DataFrame:
    return TransactionFeatureBuilder().fit(frame).transform(frame)


def gfp(frame: pd.DataFrame) -> pd.DataFrame:
    return GraphFeaturePeer().build(frame)


def measure(build: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame) -> dict:
    """Seconds, rows per second and peak RSS (MB) of one call of ``build`` on ``frame``."""
    _reset_peak_rss()
    started = time.perf_counter()
    build(frame)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "rows_per_s": round(len(frame) / seconds),
            "peak_rss_mb": round(_peak_rss_mb())}


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux); elsewhere the peak spans the whole process."""
    with contextlib.suppress(OSError):
        CLEAR_REFS.write_text("5")


def _peak_rss_mb() -> float:
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame, data = load_frame(args.transactions, args.seed)
    warm_up = frame.iloc[:WARM_UP_ROWS]
    ours(warm_up)
    gfp(warm_up)
    result_ours = measure(ours, frame)
    result_gfp = measure(gfp, frame)
    print(json.dumps({"rows": len(frame), "ours": result_ours, "gfp": result_gfp,
                      "ratio": round(result_ours["rows_per_s"] / result_gfp["rows_per_s"], 2),
                      "data": data}))


if __name__ == "__main__":
    main()
