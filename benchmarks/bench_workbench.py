"""Time to render the review page's alert queue and a decision report at a large audit log.

Logs ``--decisions`` simulated transaction decisions (default 100,000; one request per 1,000,
about 2 % flagged with a full explanation: contributions of every feature and five reasons) to
a temporary SQLite audit log, dispositions a few, then times through the HTTP app in process
(FastAPI test client, cookie sign-in as an analyst):

- ``queue``: the first queue page (flagged, newest first, 50 lines, counts by status);
- ``queue_filtered``: the queue filtered by detector, model version, score range and status;
- ``report``: the standalone report of a flagged decision logged last (history read back
  5,000 decisions).

Prints one JSON line with median / p95 wall milliseconds of ``--repeat`` requests each and
the load average at the start (the machine may be shared). Targets (issue 18): queue <= 200
ms, report <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

import numpy as np
from fastapi.testclient import TestClient

from illicitflows.audit.canonical import canonical_json
from illicitflows.audit.models import DecisionBatch
from illicitflows.serving.app import app
from illicitflows.serving.runtime import Runtime, Settings
from illicitflows.serving.ui import ui
from illicitflows.serving.workbench import SESSION_COOKIE
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

BATCH = 1_000
FEATURES = [f"feature_{i:03d}" for i in range(180)]
FAMILIES = ["fan-in", "fan-out", "structuring", "unusual for the account",
            "rapid movement / pass-through"]


def records(count: int) -> list[dict]:
    """``count`` simulated transfers as API records (time-ordered)."""
    frame = simulate_transactions(SimulationConfig(accounts=max(2000, count // 6), days=16,
                                                   laundering_rate=0.02, seed=1)).frame
    frame = frame.iloc[np.arange(count) % len(frame)].reset_index(drop=True)
    frame = frame.drop(columns=["is_laundering", "typology", "attempt_id"])
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame.to_dict(orient="records")


def explanation(rng: np.random.Generator) -> dict:
    contributions = dict(zip(FEATURES, rng.normal(0, 0.2, len(FEATURES)).tolist(),
                             strict=True))
    return {"base_value": -3.0, "contributions": contributions,
            "reasons": [{"feature": FEATURES[i], "value": 1.0, "contribution": 0.5,
                         "family": FAMILIES[i], "sentence": f"red flag {i}"}
                        for i in range(5)]}


def fill(runtime: Runtime, count: int) -> list[str]:
    """Log ``count`` decisions; returns the flagged decisions' ids."""
    rng = np.random.default_rng(0)
    rows = records(count)
    flagged_ids = []
    for start in range(0, count, BATCH):
        chunk = rows[start:start + BATCH]
        scores = rng.beta(1, 30, len(chunk))
        flagged = scores >= 0.12
        ids = [str(uuid.uuid4()) for _ in chunk]
        flagged_ids += [i for i, f in zip(ids, flagged, strict=True) if f]
        runtime.audit.log_batch(DecisionBatch(
            request_id=f"bench-{start // BATCH}", detector="transactions",
            model_name="illicitflows-transactions", model_version=str(1 + start * 3 // count),
            threshold=0.12, decision_ids=ids,
            record_texts=[canonical_json(r) for r in chunk], scores=scores.tolist(),
            flagged=flagged.tolist(),
            explanations=[explanation(rng) if f else None for f in flagged],
            key_id="bench", run_id="bench-run", features_version="bench"))
    return flagged_ids


def timed(client: TestClient, path: str, repeat: int) -> dict[str, float]:
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        walls.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    walls.sort()
    return {"median_ms": round(median(walls), 1),
            "p95_ms": round(walls[min(len(walls) - 1, int(0.95 * len(walls)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runtime = Runtime(Settings(audit_url=f"sqlite:///{root / 'audit.db'}",
                                   keys_url=f"sqlite:///{root / 'keys.db'}",
                                   history_url=f"sqlite:///{root / 'history.db'}",
                                   audit_writer="inline"))
        app.state.runtime = runtime
        started = time.perf_counter()
        flagged = fill(runtime, args.decisions)
        fill_s = time.perf_counter() - started
        key = runtime.keys.create("analyst")[1]
        for decision_id, status in zip(flagged[:30], ["confirmed", "dismissed", "escalated"] * 10,
                                       strict=True):
            runtime.dispositions.record(decision_id, status, "bench", "bench", "analyst")
        pages = TestClient(ui)  # the review page, on the API's runtime
        pages.cookies.set(SESSION_COOKIE, key)
        result = {
            "decisions": args.decisions, "flagged": len(flagged), "fill_s": round(fill_s, 1),
            "queue": timed(pages, "/queue", args.repeat),
            "queue_filtered": timed(pages, "/queue?detector=transactions&model_version=3"
                                    "&min_score=0.15&max_score=0.9&disposition=none",
                                    args.repeat),
            "load_average": round(load, 2),
        }
        client = TestClient(app, headers={"Authorization": f"Bearer {key}"})
        result["report"] = timed(client, f"/decisions/{flagged[-1]}/report", args.repeat)
        result["ui_decision"] = timed(pages, f"/decisions/{flagged[-1]}", args.repeat)
        runtime.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
