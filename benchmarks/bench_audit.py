"""Throughput of the audit log: 1-row appends, 1,000-row appends (one input per decision, and
as one request's :class:`DecisionBatch`, as the service logs them), and verify.

Appends realistic transaction decisions (one in ten flagged, with a 10-feature explanation) to
a fresh database (a temporary SQLite file unless ``--url``), then verifies the whole chain.
Prints one JSON line: rows per second, median / p95 wall milliseconds and median CPU
milliseconds per append (CPU shows the cost when other jobs share the cores), and the load
average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from illicitflows.audit import AuditLog, DecisionBatch, DecisionInput
from illicitflows.audit.canonical import canonical_json

BATCH = 1_000


def decision(i: int) -> DecisionInput:
    """One decision shaped like the transactions detector's."""
    flagged = i % 10 == 0
    return DecisionInput(
        request_id=f"req-{i // BATCH}", detector="transactions", model_name="aml-lgbm",
        model_version="7", run_id="0f3c2a9b8e1d4c5f", features_version="tx-features-2",
        key_id="5e1f0c2d9a8b7c6d", score=(i % 997) / 997, threshold=0.9, flagged=flagged,
        record={"timestamp": "2022-09-01T00:15:00", "from_bank": "B0012",
                "from_account": f"8000{i:08X}", "to_bank": "B0099", "to_account": "8000DEF2",
                "amount_received": 1234.5 + i, "receiving_currency": "US Dollar",
                "amount_paid": 1234.5 + i, "payment_currency": "US Dollar",
                "payment_format": "Wire"},
        explanation={"base_value": -3.2, "reasons": ["fan-out to new counterparties"],
                     "contributions": {f"feature_{k}": k / 10 for k in range(10)}}
        if flagged else None)


def as_batch(decisions: list[DecisionInput]) -> DecisionBatch:
    """One request's decisions as the scoring path logs them (shared fields given once)."""
    first = decisions[0]
    return DecisionBatch(
        request_id=first.request_id, detector=first.detector, model_name=first.model_name,
        model_version=first.model_version, threshold=first.threshold, key_id=first.key_id,
        run_id=first.run_id, features_version=first.features_version,
        decision_ids=[str(uuid.uuid4()) for _ in decisions],
        record_texts=[canonical_json(d.record) for d in decisions],
        scores=[d.score for d in decisions],
        flagged=[d.flagged for d in decisions], explanations=[d.explanation for d in decisions])


def timed(write: Callable[[Any], object], batches: list[Any]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per ``write`` call."""
    wall, cpu = [], []
    for batch in batches:
        start, start_cpu = time.perf_counter(), time.process_time()
        write(batch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    parser.add_argument("--singles", type=int, default=300, help="number of 1-row appends")
    parser.add_argument("--batches", type=int, default=50, help="number of 1,000-row appends")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(args.url or f"sqlite:///{Path(tmp) / 'audit.db'}")
        single, single_cpu = timed(log.append, [[decision(i)] for i in range(args.singles)])
        batched, batched_cpu = timed(log.append, [[decision(b * BATCH + i) for i in range(BATCH)]
                                                  for b in range(args.batches)])
        requests, requests_cpu = timed(log.log_batch, [
            as_batch([decision(b * BATCH + i) for i in range(BATCH)])
            for b in range(args.batches)])
        start = time.perf_counter()
        report = log.verify()
        verify_s = time.perf_counter() - start
        log.close()
    assert report.ok, report

    def p95(values: list[float]) -> float:
        return sorted(values)[int(0.95 * (len(values) - 1))]

    print(json.dumps({
        "backend": log.url.split(":", 1)[0],
        "load_average_1min": round(load, 2),
        "single_row_appends": args.singles,
        "single_row_rows_per_s": round(args.singles / sum(single), 1),
        "single_row_ms_median": round(1e3 * median(single), 3),
        "single_row_ms_p95": round(1e3 * p95(single), 3),
        "single_row_cpu_ms_median": round(1e3 * median(single_cpu), 3),
        "batch_1000_appends": args.batches,
        "batch_1000_rows_per_s": round(args.batches * BATCH / sum(batched), 1),
        "batch_1000_ms_median": round(1e3 * median(batched), 2),
        "batch_1000_ms_p95": round(1e3 * p95(batched), 2),
        "batch_1000_cpu_ms_median": round(1e3 * median(batched_cpu), 2),
        "log_batch_1000_ms_median": round(1e3 * median(requests), 2),
        "log_batch_1000_cpu_ms_median": round(1e3 * median(requests_cpu), 2),
        "verify_rows": report.checked,
        "verify_rows_per_s": round(report.checked / verify_s, 1),
    }))


if __name__ == "__main__":
    main()
