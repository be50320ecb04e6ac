"""Memory of the service under unauthenticated requests to made-up paths: the real server
(``illicitflows serve``, no models loaded: none is needed to refuse a caller), N requests
without a key to random paths (``/v1/decisions/<uuid>``, ``/v1/<random>``, ``/<random>/...``),
then the worker's resident memory and the size of ``/metrics`` compared with their values
after a warm-up of the same requests, and sampled along the run. Target: flat. Prints one
JSON object, with the machine's load average at the start and the end.

    .venv/bin/python benchmarks/bench_hostile.py [--requests 100000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 2_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def random_path(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"/v1/decisions/{uuid.UUID(int=rng.getrandbits(128))}"
    token = f"{rng.getrandbits(64):016x}"
    return f"/v1/{token}" if kind == 1 else f"/{token}/{rng.getrandbits(32):08x}"


def worker_of(server: psutil.Process) -> psutil.Process:
    """The service's worker process (the one that serves the API) among the server's."""
    for child in server.children(recursive=True):
        if "_bentoml_impl.worker" in " ".join(child.cmdline()):
            return child
    raise LookupError("no BentoML worker process found")


def snapshot(worker: psutil.Process, port: int) -> dict[str, float]:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    series = [line for line in metrics.splitlines() if line and not line.startswith("#")]
    return {"worker_rss_mb": worker.memory_info().rss / 2**20,
            "metrics_bytes": len(metrics.encode()), "metrics_series": len(series)}


async def hammer(port: int, count: int, concurrency: int, seed: int,
                 seconds: float) -> dict[str, object]:
    """``count`` requests without a key to random paths, ``concurrency`` at a time, stopping
    after ``seconds`` whatever is left: how many were sent and their statuses."""
    rng = random.Random(seed)
    statuses: dict[int, int] = {}
    sent = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=30) as client:
        async def one() -> None:
            nonlocal sent
            while sent < count and time.monotonic() < deadline:
                sent += 1
                answer = await client.get(random_path(rng))
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return {"sent": sent, "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--samples", type=int, default=5,
                        help="memory and /metrics samples taken along the run")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "ILLICITFLOWS_DATA_DIR": str(root),
               "BENTOML_HOME": str(root / "bentoml"),
               "ILLICITFLOWS_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        server = subprocess.Popen([sys.executable, "-m", "illicitflows.cli", "serve", "--port",
                                   str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise TimeoutError("server did not come up in 300 s")
            worker = worker_of(psutil.Process(server.pid))
            warm = asyncio.run(hammer(port, WARM_UP, args.concurrency, args.seed - 1, 300))
            before = snapshot(worker, port)
            started, deadline = time.perf_counter(), time.monotonic() + args.max_seconds
            sent, statuses, trajectory = 0, {}, []
            for step in range(args.samples):  # the same requests, in steps, sampled between
                share = args.requests * (step + 1) // args.samples - sent
                part = asyncio.run(hammer(port, share, args.concurrency, args.seed + step,
                                          deadline - time.monotonic()))
                sent += part["sent"]
                for status, n in part["statuses"].items():
                    statuses[status] = statuses.get(status, 0) + n
                trajectory.append({"requests": sent, **snapshot(worker, port)})
                if time.monotonic() >= deadline:
                    break
            elapsed = time.perf_counter() - started
            after = trajectory[-1]
            run = {"sent": sent, "statuses": statuses}
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    print(json.dumps({
        "requests": run["sent"], "statuses": run["statuses"], "warm_up_requests": warm["sent"],
        "seconds": elapsed, "requests_per_s": run["sent"] / elapsed,
        "after_warm_up": before, "after_requests": after,
        "growth": {key: after[key] - before[key] for key in before},
        "trajectory": trajectory,
        "target": "flat: metrics series unchanged, worker memory within a few MB",
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }, indent=2))


if __name__ == "__main__":
    main()
