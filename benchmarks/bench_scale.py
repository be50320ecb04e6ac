"""Batch scoring (features + scores) of one simulated file: the single process against a local
Dask cluster (``local:N`` with a memory limit per worker), at several sizes.

For each size: simulate ``size`` transactions over ``--days`` days and write the IBM CSV; then,
each in a fresh process, score it (1) as ``illicitflows score`` does (load, features, scores)
and (2) with :func:`illicitflows.scale.scoring.score_transactions` on the cluster. Reports wall
time, the peak RSS of the largest process (single process; the cluster's workers and the
client) and the largest score difference on a random sample of rows. The detector is a small
one trained once on a separate simulated sample (every stage a LightGBM model, risk memory on)
so that scoring costs what a registered detector's does. Prints one JSON document.

    python benchmarks/bench_scale.py --sizes 500000,1000000,2000000 --workers 2 \\
        --worker-memory 6GB
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from illicitflows.modeling.detector import Detector
from illicitflows.modeling.lgbm import DTYPE, LightGBMModel, booster_params
from illicitflows.transactions.features import FeatureConfig, TransactionFeatureBuilder
from illicitflows.transactions.features.builder import time_order
from illicitflows.transactions.schema import LABEL
from illicitflows.transactions.simulate import (
    SimulationConfig,
    simulate_transactions,
    write_simulation,
)

SAMPLE = 10_000
PARAMS = {"num_leaves": 15, "learning_rate": 0.1, "seed": 0, "num_threads": 1}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quick_detector(folder: Path, rounds: int, seed: int) -> Path:
    """A detector with ``rounds`` risk-memory rounds, trained on about 100,000 simulated
    rows."""
    frame = simulate_transactions(SimulationConfig(accounts=10_000, days=10, seed=seed)).frame
    y = frame[LABEL].to_numpy()
    builder = TransactionFeatureBuilder(FeatureConfig(memory_rounds=rounds)).fit(frame)
    features = builder.transform(frame)

    def fit(columns: pd.DataFrame) -> LightGBMModel:
        data = lgb.Dataset(columns.to_numpy(dtype=DTYPE), y, feature_name=list(columns.columns))
        return LightGBMModel(lgb.train(booster_params(PARAMS), data, num_boost_round=100))

    for stage in range(rounds):
        model = fit(features[builder.round_inputs(stage)])
        scores = model.score(features)
        builder.attach_memory(model, float(np.quantile(scores, 0.99)))
        memory = builder.memory_features(time_order(frame), scores, stage)
        features = pd.concat([features, memory], axis=1)
    final = fit(features[builder.feature_names])
    threshold = float(np.quantile(final.score(features), 0.995))
    return Detector("transactions", builder, final, threshold).save(folder)


def single(csv: Path, detector: Path, sample: Path) -> dict:
    """Child: score as ``illicitflows score`` does; keep the sample rows' scores."""
    from illicitflows.transactions.io import load_transactions

    started = time.perf_counter()
    model = Detector.load(detector)
    frame = load_transactions(csv).frame
    scores = model.score_features(model.features(frame))
    seconds = time.perf_counter() - started
    rows = np.load(sample)
    np.save(sample.with_name("single.npy"), scores[rows])
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rows": len(frame)}


def spread(csv: Path, detector: Path, sample: Path, workers: int, memory: str,
           partition: str, out: Path) -> dict:
    """Child: the same scores on a local cluster; the largest worker's peak RSS."""
    from illicitflows.scale.cluster import ClusterSpec, connect
    from illicitflows.scale.scoring import score_transactions
    from illicitflows.scale.source import parse_period

    model = Detector.load(detector)
    with connect(ClusterSpec(workers=workers, memory_limit=memory), say=lambda _: None) as client:
        started = time.perf_counter()
        job = score_transactions(client, [csv], out, model, parse_period(partition),
                                 show_progress=False)
        seconds = time.perf_counter() - started
        workers_rss = client.run(peak_rss_mb)
    scored = pd.read_parquet(out, columns=["row", "score"]).sort_values("row")
    rows = np.load(sample)
    np.save(sample.with_name("spread.npy"), scored["score"].to_numpy()[rows])
    return {"seconds": seconds, "rows": job.rows, "partitions": job.partitions,
            "peak_rss_worker_mb": max(workers_rss.values()), "peak_rss_client_mb": peak_rss_mb()}


def child(args: list[str]) -> dict:
    """Run this script's ``--child`` mode in a fresh process; its JSON answer."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_size(size: int, days: int, folder: Path, detector: Path, args: argparse.Namespace
             ) -> dict:
    csv = folder / f"tx-{size}" / "transactions.csv"
    started = time.perf_counter()
    sim = simulate_transactions(SimulationConfig(accounts=max(1, size // days), days=days,
                                                 seed=args.seed))
    write_simulation(sim, csv.parent)
    n = len(sim.frame)
    del sim
    simulate_s = time.perf_counter() - started
    sample = folder / f"tx-{size}" / "sample.npy"
    np.save(sample, np.sort(np.random.default_rng(0).choice(n, min(SAMPLE, n), replace=False)))
    one = child(["single", str(csv), str(detector), str(sample)])
    many = child(["spread", str(csv), str(detector), str(sample), str(args.workers),
                  args.worker_memory, args.partition, str(folder / f"tx-{size}" / "out")])
    a, b = np.load(sample.with_name("single.npy")), np.load(sample.with_name("spread.npy"))
    result = {"transactions": n, "simulate_s": simulate_s, "single": one, "cluster": many,
            "speedup": one["seconds"] / many["seconds"],
            "parity_sample_rows": len(a), "parity_max_abs_diff": float(np.max(np.abs(a - b)))}
    print(json.dumps(result), file=sys.stderr, flush=True)  # each size as soon as it is done
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500000,1000000,2000000")
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="6GB")
    parser.add_argument("--partition", default="7d")
    parser.add_argument("--memory-rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "single":
            print(json.dumps(single(Path(rest[0]), Path(rest[1]), Path(rest[2]))))
        else:
            csv, detector, sample, workers, memory, partition, out = rest
            print(json.dumps(spread(Path(csv), Path(detector), Path(sample), int(workers),
                                    memory, partition, Path(out))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        detector = quick_detector(folder / "detector", args.memory_rounds, args.seed + 1)
        results = [one_size(int(s), args.days, folder, detector, args)
                   for s in args.sizes.split(",")]
    print(json.dumps({"workers": args.workers, "worker_memory": args.worker_memory,
                      "partition": args.partition, "days": args.days,
                      "memory_rounds": args.memory_rounds, "sizes": results}, indent=2))


if __name__ == "__main__":
    main()
