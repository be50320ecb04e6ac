"""Throughput of the audit log: 1-row appends, 1,000-row appends (one input per decision, and
as one request's :class:`DecisionBatch`, as the service logs them), and verify.

Appends realistic transaction decisions (one in ten flagged, with a 10-feature explanation) to
a fresh database (a temporary SQLite file unless ``--url``; ``--backend postgresql`` starts a
throw-away PostgreSQL server with Debian's binaries, with its default durability: ``fsync``
on, synchronous commits; ``both`` runs SQLite then PostgreSQL), then verifies the whole chain.
Prints one JSON line per backend: rows per second, median / p95 wall milliseconds and median
CPU milliseconds per append (CPU shows the cost when other jobs share the cores), verify's
rows per second and seconds, the time to sign the first checkpoint (storing the Merkle nodes
of every row) and one after 1,000 more rows, the median inclusion proof, and the load average
at the start.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from illicitflows.audit import AuditLog, DecisionBatch, DecisionInput
from illicitflows.audit.canonical import canonical_json
from illicitflows.audit.checkpoints import append_checkpoint, inclusion_proof, sign_head

BATCH = 1_000
ROOT = Path(__file__).resolve().parents[1]


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


def postgres_server():  # noqa: ANN201 - tests/pg.py's context manager
    """The tests' throw-away PostgreSQL server, durable (loaded by path: tests are no
    package)."""
    spec = importlib.util.spec_from_file_location("illicitflows_tests_pg", ROOT / "tests" / "pg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.postgres_server(durable=True)


def run(url: str, singles: int, batches: int) -> dict[str, Any]:
    """Time the appends and verify on the empty database at ``url``."""
    load = os.getloadavg()[0]
    log = AuditLog(url)
    single, single_cpu = timed(log.append, [[decision(i)] for i in range(singles)])
    batched, batched_cpu = timed(log.append, [[decision(b * BATCH + i) for i in range(BATCH)]
                                              for b in range(batches)])
    requests, requests_cpu = timed(log.log_batch, [
        as_batch([decision(b * BATCH + i) for i in range(BATCH)]) for b in range(batches)])
    start = time.perf_counter()
    report = log.verify()
    verify_s = time.perf_counter() - start
    key = Ed25519PrivateKey.generate()
    start = time.perf_counter()
    signed = sign_head(log, key)  # the first: stores the Merkle nodes of every row
    first_checkpoint_s = time.perf_counter() - start
    log.log_batch(as_batch([decision(i) for i in range(BATCH)]))
    start = time.perf_counter()
    sign_head(log, key)  # the usual: the rows since the last one
    checkpoint_s = time.perf_counter() - start
    middle = log.query(page=signed.tree_size // 2, page_size=1).items[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoints.jsonl"
        append_checkpoint(path, signed)
        proofs = []
        for _ in range(20):
            start = time.perf_counter()
            inclusion_proof(log, middle.decision_id, path)
            proofs.append(time.perf_counter() - start)
    log.close()
    assert report.ok, report

    def p95(values: list[float]) -> float:
        return sorted(values)[int(0.95 * (len(values) - 1))]

    return {
        "backend": url.split(":", 1)[0],
        "load_average_1min": round(load, 2),
        "single_row_appends": singles,
        "single_row_rows_per_s": round(singles / sum(single), 1),
        "single_row_ms_median": round(1e3 * median(single), 3),
        "single_row_ms_p95": round(1e3 * p95(single), 3),
        "single_row_cpu_ms_median": round(1e3 * median(single_cpu), 3),
        "batch_1000_appends": batches,
        "batch_1000_rows_per_s": round(batches * BATCH / sum(batched), 1),
        "batch_1000_ms_median": round(1e3 * median(batched), 2),
        "batch_1000_ms_p95": round(1e3 * p95(batched), 2),
        "batch_1000_cpu_ms_median": round(1e3 * median(batched_cpu), 2),
        "log_batch_1000_ms_median": round(1e3 * median(requests), 2),
        "log_batch_1000_ms_p95": round(1e3 * p95(requests), 2),
        "log_batch_1000_cpu_ms_median": round(1e3 * median(requests_cpu), 2),
        "verify_rows": report.checked,
        "verify_s": round(verify_s, 3),
        "verify_rows_per_s": round(report.checked / verify_s, 1),
        "first_checkpoint_s": round(first_checkpoint_s, 3),
        "checkpoint_after_1000_ms": round(1e3 * checkpoint_s, 2),
        "inclusion_proof_ms_median": round(1e3 * median(proofs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="without --url: where to run (default: sqlite)")
    parser.add_argument("--singles", type=int, default=300, help="number of 1-row appends")
    parser.add_argument("--batches", type=int, default=50, help="number of 1,000-row appends")
    args = parser.parse_args()
    if args.url:
        print(json.dumps(run(args.url, args.singles, args.batches)))
        return
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run(f"sqlite:///{Path(tmp) / 'audit.db'}", args.singles,
                                 args.batches)), flush=True)
    if args.backend in ("postgresql", "both"):
        with postgres_server() as server:
            if server is None:
                sys.exit("no PostgreSQL server binary found (install Debian's postgresql)")
            print(json.dumps(run(server.new_database(), args.singles, args.batches)))


if __name__ == "__main__":
    main()
