"""Soak: does the transactions detector's memory level off after the first horizon?

Streams simulated days of payments at HI-Small's rate (about 5M transactions in 10 days, so
500,000 a day) among a drifting population (``--accounts`` active, ``--churn`` of them replaced
by new accounts every day, so idle accounts pile up unless they are recycled):

- ``inprocess`` (default): through the engine's scoring core in this process (the detector's
  feature state, features, predict), time-ordered chunks of ``--chunk`` records; RSS, the
  state's sizes and the slowest chunk (a compaction runs within one) are sampled after each
  simulated day. ``--days 30`` is the issue's full run
  (15M transactions); ``--unbounded`` keeps every edge and account (the state before
  compaction), for comparison.
- ``server``: the real service over HTTP for ``--minutes`` (10 in the issue) with batches of
  ``--batch`` records, simulated time advancing ``--sim-days-per-minute`` per minute of wall
  time (so several horizons pass in a short run); the RSS of every process of the service
  (the HTTP worker, the audit writer) is sampled each minute.

The detector is trained first on a small simulated sample (as ``bench_service.py`` does).
Prints one JSON object (the curve, the settings, the machine's load average) and writes a PNG
plot of RSS against simulated days beside ``--out``.

    .venv/bin/python benchmarks/bench_soak.py --days 3 --out /tmp/soak.json
    .venv/bin/python benchmarks/bench_soak.py --days 30 --out /tmp/soak30.json
    .venv/bin/python benchmarks/bench_soak.py --mode server --minutes 10 --out /tmp/soak_server.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from bench_service import api_records, running_service, train, wait_for_model

from illicitflows.modeling.detector import Detector
from illicitflows.transactions.features.state import HistoryState
from illicitflows.transactions.schema import PAYMENT_FORMATS
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

DAY = 86_400
START = pd.Timestamp("2023-01-02")
MB = 1 << 20


# -- the stream -------------------------------------------------------------------------------

class Population:
    """``active`` accounts paying each other (a few busy ones, many quiet ones); every day a
    ``churn`` share of them is replaced by accounts never seen before."""

    def __init__(self, active: int, churn: float, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.ids = np.arange(active)
        self.next_id = active
        self.churn = churn

    def new_day(self) -> None:
        leaving = self.rng.random(len(self.ids)) < self.churn
        self.ids[leaving] = np.arange(self.next_id, self.next_id + int(leaving.sum()))
        self.next_id += int(leaving.sum())

    def draw(self, n: int) -> np.ndarray:
        """Account numbers of ``n`` parties: the square of a uniform draw favours the busy."""
        return self.ids[(self.rng.random(n) ** 2 * len(self.ids)).astype(np.int64)]


def day_frame(population: Population, day: int, n: int, currencies: list[str]) -> pd.DataFrame:
    """``n`` transfers of simulated day ``day`` in time order (timestamps to the second)."""
    rng = population.rng
    seconds = np.sort(rng.integers(0, DAY, n)) + day * DAY
    senders, receivers = population.draw(n), population.draw(n)
    amount = np.round(rng.lognormal(6.5, 1.6, n), 2)
    currency = np.array(currencies)[rng.integers(0, len(currencies), n)]
    formats = np.array(sorted(PAYMENT_FORMATS))[rng.integers(0, len(PAYMENT_FORMATS), n)]
    return pd.DataFrame({
        "timestamp": START + pd.to_timedelta(seconds, unit="s"),
        "from_bank": [f"{a % 997:05d}" for a in senders.tolist()],
        "from_account": [f"{a:09X}" for a in senders.tolist()],
        "to_bank": [f"{a % 997:05d}" for a in receivers.tolist()],
        "to_account": [f"{a:09X}" for a in receivers.tolist()],
        "amount_received": amount, "receiving_currency": currency,
        "amount_paid": amount, "payment_currency": currency, "payment_format": formats,
        "is_laundering": np.zeros(n, dtype=np.int8),
    })


def trained_detector(rounds: int, seed: int) -> Detector:
    sample = simulate_transactions(SimulationConfig(accounts=5_000, days=10, seed=seed)).frame
    return train(sample.drop(columns=["typology", "attempt_id"]).reset_index(drop=True), rounds)


# -- memory -----------------------------------------------------------------------------------

def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process (MB), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return ""


def state_sizes(state: HistoryState) -> dict[str, int]:
    return {"edges": state.n_edges, "edge_capacity": state.edge_capacity,
            "accounts": len(state.accounts), "account_slots": len(state.slot_keys),
            "account_capacity": state.account_capacity, "pair_cnt": len(state.pair_cnt),
            "pair_last": len(state.pair_last), "compactions": state.compactions,
            "state_mb": round(sum(a.nbytes for a in state.arrays.values()) / MB, 1)}


# -- the two modes ----------------------------------------------------------------------------

def in_process(args: argparse.Namespace, detector: Detector) -> list[dict]:
    builder = detector.builder
    state = builder.new_state()
    if args.unbounded:
        state.horizon_s = None
    population = Population(args.accounts, args.churn, args.seed)
    currencies = sorted(builder.usd_per_unit_)
    curve = [{"day": 0, "rss_mb": round(rss_mb(), 1), "transactions": 0, **state_sizes(state)}]
    started, total = time.perf_counter(), 0
    for day in range(args.days):
        population.new_day()
        frame = day_frame(population, day, args.per_day, currencies)
        day_started = time.perf_counter()
        flagged, slowest = 0, 0.0
        for start in range(0, len(frame), args.chunk):
            chunk_started = time.perf_counter()
            features = builder.transform(frame.iloc[start:start + args.chunk], state)
            flagged += int((detector.score_features(features) >= detector.threshold).sum())
            slowest = max(slowest, time.perf_counter() - chunk_started)
        total += len(frame)
        del frame, features
        gc.collect()
        curve.append({"day": day + 1, "rss_mb": round(rss_mb(), 1), "transactions": total,
                      "flagged": flagged,
                      "records_per_s": round(args.per_day / (time.perf_counter() - day_started)),
                      "slowest_chunk_s": round(slowest, 2),
                      "wall_s": round(time.perf_counter() - started, 1), **state_sizes(state)})
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
        if time.perf_counter() - started > args.max_hours * 3600:
            break
    return curve


def batches(args: argparse.Namespace, currencies: list[str]) -> Iterator[tuple[float, list]]:
    """(simulated day, API records) of batches whose timestamps follow the wall clock:
    ``--sim-days-per-minute`` simulated days per minute since the first call."""
    population = Population(args.accounts, args.churn, args.seed)
    rng = population.rng
    started = time.monotonic()
    last_second, day_seen, sent = 0, -1, 0
    while True:
        sim_seconds = int((time.monotonic() - started) / 60 * args.sim_days_per_minute * DAY)
        sim_seconds = max(sim_seconds, last_second)
        while day_seen < sim_seconds // DAY:
            population.new_day()
            day_seen += 1
        frame = day_frame(population, 0, args.batch, currencies)
        span = max(1, sim_seconds - last_second)
        offsets = np.sort(rng.integers(0, span, args.batch)) + last_second
        frame["timestamp"] = START + pd.to_timedelta(offsets, unit="s")
        last_second = int(offsets[-1])
        frame["id"] = [f"soak-{sent + i}" for i in range(len(frame))]
        sent += len(frame)
        yield last_second / DAY, api_records(frame)


def over_http(args: argparse.Namespace, detector: Detector) -> list[dict]:
    with running_service(detector, args.port) as (pid, key):
        wait_for_model(args.port, key)
        return _stream(args, detector, pid, key)


def _stream(args: argparse.Namespace, detector: Detector, pid: int, key: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {key}"}
    url = f"http://127.0.0.1:{args.port}/v1/transactions/score"
    curve: list[dict] = []
    sent = errors = 0
    started = time.monotonic()
    next_sample = started
    sim_day = 0.0
    with httpx.Client(timeout=120) as client:
        for sim_day, records in batches(args, sorted(detector.builder.usd_per_unit_)):
            now = time.monotonic()
            if now >= next_sample:
                processes = {p: round(rss_mb(p), 1) for p in process_tree(pid)}
                curve.append({"minute": round((now - started) / 60, 2),
                              "sim_day": round(sim_day, 2), "records": sent,
                              "errors": errors, "rss_mb_total": round(sum(processes.values()), 1),
                              "rss_mb_largest": max(processes.values()),
                              "rss_mb": {f"{p} {command_of(p)}": m
                                         for p, m in processes.items()}})
                print(json.dumps({k: v for k, v in curve[-1].items() if k != "rss_mb"}),
                      file=sys.stderr, flush=True)
                next_sample += args.sample_s
            if now - started > args.minutes * 60:
                break
            answer = client.post(url, json={"transactions": records}, headers=headers)
            if answer.status_code == 200:
                sent += len(records)
            else:
                errors += 1
                if errors == 1:
                    print(answer.status_code, answer.text[:500], file=sys.stderr)
    return curve


# -- output -----------------------------------------------------------------------------------

def plot(curve: list[dict], x: str, y: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot([p[x] for p in curve], [p[y] for p in curve], marker="o")
    axis.set_xlabel(x.replace("_", " "))
    axis.set_ylabel(y.replace("_", " "))
    axis.set_title(title)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("inprocess", "server"), default="inprocess")
    parser.add_argument("--days", type=int, default=3, help="simulated days (issue: 30)")
    parser.add_argument("--per-day", type=int, default=500_000,
                        help="transactions a simulated day (HI-Small: about 500,000)")
    parser.add_argument("--accounts", type=int, default=500_000,
                        help="accounts active at any time (HI-Small: about 515,000)")
    parser.add_argument("--churn", type=float, default=0.02,
                        help="share of the active accounts replaced every simulated day")
    parser.add_argument("--chunk", type=int, default=10_000, help="records per transform")
    parser.add_argument("--unbounded", action="store_true",
                        help="keep every edge and account (no compaction), for comparison")
    parser.add_argument("--max-hours", type=float, default=6.0, help="stop after this long")
    parser.add_argument("--minutes", type=float, default=10.0, help="server mode: run time")
    parser.add_argument("--batch", type=int, default=100, help="server mode: records a request")
    parser.add_argument("--sim-days-per-minute", type=float, default=2.0,
                        help="server mode: simulated days per minute of wall time")
    parser.add_argument("--sample-s", type=float, default=60.0,
                        help="server mode: seconds between RSS samples")
    parser.add_argument("--rounds", type=int, default=60, help="boosting rounds of the model")
    parser.add_argument("--port", type=int, default=3937)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("soak.json"))
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    detector = trained_detector(args.rounds, args.seed)
    horizon_days = detector.builder.config.horizon_s / DAY
    if args.mode == "inprocess":
        curve = in_process(args, detector)
        plot(curve, "day", "rss_mb", args.out.with_suffix(".png"),
             f"in-process RSS, {args.per_day:,} transactions a day "
             f"(horizon {horizon_days:g} days)")
    else:
        curve = over_http(args, detector)
        plot(curve, "minute", "rss_mb_total", args.out.with_suffix(".png"),
             f"service RSS (all processes), {args.sim_days_per_minute:g} simulated days a "
             f"minute (horizon {horizon_days:g} days)")
    result = {"mode": args.mode, "settings": {k: str(v) if isinstance(v, Path) else v
                                              for k, v in vars(args).items()},
              "horizon_days": horizon_days, "curve": curve,
              "load_average": {"start": load_at_start, "end": os.getloadavg()}}
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
