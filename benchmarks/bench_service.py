"""Service latency with 1M transactions of history: the real BentoML server over HTTP against
the in-process limit (features + predict + contributions of the flagged records, as the
service does by default; no HTTP, no validation, no history or audit writes) for the same
records. Prints one JSON object, with the machine's load average (1, 5, 15 minutes) at the
start and the end: latency on a shared machine means little without it.

    .venv/bin/python benchmarks/bench_service.py [--history 1000000] [--single 300] [--batches 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd

from illicitflows.access.keys import KeyStore
from illicitflows.audit.canonical import frame_texts
from illicitflows.jobs.config import TransactionsPipeline, load_pipeline
from illicitflows.jobs.training import fit_scoring_model
from illicitflows.modeling.detector import Detector
from illicitflows.modeling.split import split_by_fractions
from illicitflows.serving.history import HistoryStore
from illicitflows.tracking.registry import CHAMPION, log_and_register, model_name
from illicitflows.tracking.setup import configure, use_experiment
from illicitflows.transactions.features import TransactionFeatureBuilder
from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

ROOT = Path(__file__).resolve().parents[1]


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99))}


def api_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Simulated transactions as the API takes them: no label, times as ISO text."""
    out = frame.drop(columns=["is_laundering"]).copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def api_records(frame: pd.DataFrame) -> list[dict]:
    return api_frame(frame).to_dict(orient="records")


def train(frame: pd.DataFrame, rounds: int) -> Detector:
    pipeline = load_pipeline(ROOT / "pipelines" / "transactions.yaml", TransactionsPipeline)
    splits = split_by_fractions(frame["timestamp"])
    builder = TransactionFeatureBuilder(pipeline.features).fit(frame[splits == "train"])
    features = builder.transform(frame)
    model = pipeline.model.model_copy(update={"num_boost_round": rounds})
    fitted = fit_scoring_model(features, frame["is_laundering"].to_numpy(), splits, model,
                               pipeline.threshold, builder.categorical_features, pipeline.seed)
    return Detector("transactions", builder, fitted.model, fitted.threshold)


def register(detector: Detector, uri: str) -> None:
    configure(uri)
    use_experiment("transactions", uri)
    with mlflow.start_run():
        version = log_and_register(detector)
    mlflow.MlflowClient().set_registered_model_alias(model_name("transactions"), CHAMPION,
                                                     version.version)


def preload(history: pd.DataFrame, url: str) -> None:
    store = HistoryStore(url, "transactions")
    records = api_frame(history.assign(id=[f"h{i}" for i in range(len(history))]))
    for start in range(0, len(records), 50_000):
        chunk = records.iloc[start:start + 50_000]
        store.append(frame_texts(chunk), chunk["id"].tolist(),
                     [f"00000000-0000-4000-8000-{start + i:012d}" for i in range(len(chunk))],
                     chunk["timestamp"].tolist(), [0.0] * len(chunk), [False] * len(chunk))


def in_process(detector: Detector, history: pd.DataFrame, singles: pd.DataFrame,
               batches: list[pd.DataFrame]) -> dict[str, float]:
    state = detector.builder.new_state()
    detector.builder.transform(history, state)

    def once(frame: pd.DataFrame) -> float:
        started = time.perf_counter()
        features = detector.builder.transform(frame, state)
        flagged = detector.score_features(features) >= detector.threshold
        if flagged.any():  # as the service: explanations for flagged records
            detector.model.contributions(features[flagged])
        return time.perf_counter() - started

    single = [once(singles.iloc[[i]]) for i in range(len(singles))]
    batch = [once(b) for b in batches]
    return {"single": percentiles(single), "batch_1000": percentiles(batch)}


def scrape(client: httpx.Client, port: int) -> dict[str, float]:
    """Every sample of the service's /metrics, by its name with labels."""
    samples = {}
    for line in client.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name and not line.startswith("#"):
            samples[name] = float(value)
    return samples


def mean_ms(start: dict[str, float], end: dict[str, float], name: str) -> float:
    """Mean milliseconds of a histogram sample (``name`` with labels, no suffix) between two
    scrapes, as the service timed it."""
    def grown(suffix: str) -> float:
        key = name.replace("{", f"_{suffix}{{", 1)
        return end.get(key, 0.0) - start.get(key, 0.0)

    return 1000 * grown("sum") / max(grown("count"), 1)


STAGE = re.compile(r'illicitflows_stage_seconds_sum\{detector="transactions",stage="(\w+)"\}')


def stages_ms(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Mean milliseconds of each scoring stage between two scrapes (inside the API)."""
    found = [STAGE.fullmatch(name) for name in end]
    return {m[1]: mean_ms(start, end, m[0].replace("_sum{", "{", 1)) for m in found if m}


def over_http(port: int, key: str, singles: list[dict], batches: list[list[dict]]) -> dict:
    """Client-side latency percentiles, and the means of what the client and the API timed
    (their difference is HTTP, BentoML's middlewares and the client). Request bodies are
    encoded before timing starts: the client's own JSON encoding is not the service's."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/v1/transactions/score"
    with httpx.Client(timeout=300) as client:
        def once(body: bytes) -> float:
            started = time.perf_counter()
            answer = client.post(url, content=body, headers=headers)
            answer.raise_for_status()
            return time.perf_counter() - started

        def encoded(records: list[dict]) -> bytes:  # before the clock starts, as a load
            return json.dumps({"transactions": records}).encode()  # generator sends bodies

        single_bodies, batch_bodies = [encoded([r]) for r in singles], list(map(encoded, batches))
        marks = [scrape(client, port)]
        single = list(map(once, single_bodies))
        marks.append(scrape(client, port))
        batch = list(map(once, batch_bodies))
        marks.append(scrape(client, port))
    api = [mean_ms(start, end, 'illicitflows_request_seconds{endpoint="/transactions/score"}')
           for start, end in zip(marks, marks[1:], strict=False)]
    return {"single": percentiles(single), "batch_1000": percentiles(batch),
            "mean_ms": {"single": {"client": 1000 * statistics.mean(single), "api": api[0]},
                        "batch_1000": {"client": 1000 * statistics.mean(batch), "api": api[1]}},
            "stages_mean_ms": {"single": stages_ms(marks[0], marks[1]),
                               "batch_1000": stages_ms(marks[1], marks[2])},
            "records_per_s_batch_1000": 1000 / statistics.median(batch)}


def overhead_vs_core(http: dict) -> dict[str, float]:
    """Mean client latency over the mean of the same work inside the server (features, predict
    and explanations as its stages timed them): the overhead measured under the server's own
    conditions, where the in-process limit runs in another process at another time."""
    core = ("features", "predict", "explain")
    return {k: http["mean_ms"][k]["client"] / sum(http["stages_mean_ms"][k][s] for s in core)
            for k in ("single", "batch_1000")}


@contextlib.contextmanager
def running_service(detector: Detector, port: int,
                    history: pd.DataFrame | None = None) -> Iterator[tuple[int, str]]:
    """The service on ``port`` in a temporary data folder, ``detector`` registered as the
    transactions champion and ``history`` (when given) in its history store: yields the
    server's process id (the leader of its process group) and an admin key; stops it after."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.environ.update({"ILLICITFLOWS_DATA_DIR": str(root), "BENTOML_HOME": str(root / "bh"),
                           "ILLICITFLOWS_TRACKING_URI": uri})
        register(detector, uri)
        if history is not None:
            preload(history, f"sqlite:///{root / 'history.db'}")
        key = KeyStore().create("admin")[1]
        server = subprocess.Popen([sys.executable, "-m", "illicitflows.cli", "serve", "--port",
                                   str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            yield server.pid, key
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)


def wait_for_model(port: int, key: str, seconds: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            models = httpx.get(f"http://127.0.0.1:{port}/v1/models",
                               headers={"Authorization": f"Bearer {key}"}).json()
            if any(m["detector"] == "transactions" for m in models):
                return time.monotonic() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError("the service did not load the transactions champion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--port", type=int, default=3931)
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    need = args.history + args.single + args.batches * 1000
    accounts = max(10_000, need // 10)
    frame = simulate_transactions(SimulationConfig(accounts=accounts, days=10, seed=11)).frame
    frame = frame.drop(columns=["typology", "attempt_id"]).reset_index(drop=True)
    history, rest = frame.iloc[:args.history], frame.iloc[args.history:]
    singles = rest.iloc[:args.single]
    batch_frames = [rest.iloc[args.single + 1000 * i: args.single + 1000 * (i + 1)]
                    for i in range(args.batches)]
    detector = train(history, args.rounds)
    limit = in_process(detector, history, singles, batch_frames)

    with running_service(detector, args.port, history) as (_, key):
        load_s = wait_for_model(args.port, key)
        http = over_http(args.port, key, api_records(singles),
                         [api_records(b) for b in batch_frames])
    print(json.dumps({
        "history_transactions": len(history), "startup_load_s": load_s,
        "http": http, "in_process": limit,
        "overhead_ratio": {k: http[k]["p50_ms"] / limit[k]["p50_ms"]
                           for k in ("single", "batch_1000")},
        "overhead_ratio_vs_server_core": overhead_vs_core(http),
        "targets": {"single_p99_ms": 20, "batch_1000_p50_ms": 500, "overhead_ratio": 1.5},
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }, indent=2))


if __name__ == "__main__":
    main()
