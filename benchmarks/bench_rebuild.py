"""A scorer's rebuild at service start: peak memory and time of reading the history in chunks
of ``--chunks`` rows (0: the whole history in one piece, as before chunked rebuilds).

Simulates transactions, trains a small detector on them (as ``bench_service.py`` does), stores
``--history`` of them in a history store, then rebuilds a transactions scorer from that store in
a fresh process per chunk size, reporting the peak of memory allocated during the rebuild
(tracemalloc, which numpy reports to), the process's peak RSS, the time, and whether the
rebuilt state scores the next records identically. Prints one JSON
object.

    .venv/bin/python benchmarks/bench_rebuild.py --history 200000 --chunks 0,50000,10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from bench_service import api_records, preload, train

from illicitflows.modeling.detector import Detector
from illicitflows.serving.engine import ModelRef, TransactionScorer
from illicitflows.serving.history import HistoryStore
from illicitflows.serving.offline import DryRunLog
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

MB = 1 << 20
NEXT = 200  # records scored after the rebuild, to compare the states


def child(folder: Path, chunk_rows: int) -> None:
    """Rebuild from the store in ``folder`` and print peak RSS growth, time and next scores."""
    detector = Detector.load(folder / "detector")
    records = json.loads((folder / "next.json").read_text())
    own = folder / f"history-{chunk_rows}.db"  # scoring the next records appends to it
    shutil.copyfile(folder / "history.db", own)
    store = HistoryStore(f"sqlite:///{own}", "transactions")
    tracemalloc.start()
    started = time.perf_counter()
    scorer = TransactionScorer(detector, ModelRef("bench", "1", "run"), store,
                               chunk_rows=chunk_rows or 1 << 40)
    seconds = time.perf_counter() - started
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    scores = [d.score for d in scorer.score(records, DryRunLog()).decisions]
    print(json.dumps({"chunk_rows": chunk_rows or None, "rebuild_s": round(seconds, 2),
                      "rebuild_peak_allocated_mb": round(peak / MB, 1),
                      "held_after_rebuild_mb": round(held / MB, 1),
                      "peak_rss_mb": round(rss / MB, 1), "scores": scores}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--chunks", default="0,50000,10000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]))
        return
    sim = simulate_transactions(SimulationConfig(accounts=max(2000, args.history // 12),
                                                 days=12, laundering_rate=0.01, seed=3))
    frame = sim.frame.drop(columns=["typology", "attempt_id"]).reset_index(drop=True)
    cut = min(args.history, len(frame) - NEXT)
    history, following = frame.iloc[:cut], frame.iloc[cut:cut + NEXT]
    detector = train(frame.iloc[:min(len(frame), 100_000)], args.rounds)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        detector.save(folder / "detector")
        preload(history, f"sqlite:///{folder / 'history.db'}")
        nexts = [dict(r, id=f"n{i}") for i, r in enumerate(api_records(following))]
        (folder / "next.json").write_text(json.dumps(nexts, default=str))
        for chunk_rows in (int(c) for c in args.chunks.split(",")):
            done = subprocess.run([sys.executable, __file__, "--child", str(folder),
                                   str(chunk_rows)], capture_output=True, text=True,
                                  timeout=3600)
            if done.returncode:
                raise SystemExit(f"rebuild with chunks of {chunk_rows} failed:\n"
                                 f"{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    reference = np.array(results[0]["scores"])
    for result in results:
        result["max_score_difference"] = float(np.abs(np.array(result.pop("scores"))
                                                      - reference).max(initial=0.0))
    print(json.dumps({"history_rows": len(history), "next_records": len(following),
                      "load_average": os.getloadavg(), "runs": results}, indent=2))


if __name__ == "__main__":
    main()
