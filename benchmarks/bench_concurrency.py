"""Concurrent clients against the real server: N clients (wrk connections) each send
single-record scoring requests whose timestamps follow the wall clock with up to 5 minutes of
random delay (within the default 10-minute allowed lateness, so no record should be refused),
for a fixed duration per N; then the same server's bare ``/livez`` under the same load, the
ceiling of this HTTP stack on this machine. Prints one JSON object: requests/s, p50/p99,
errors, refused records (non-2xx answers) per N, the ratio to ``/livez``, and the machine's
load average (the machine may be shared: numbers mean little without it).

Needs ``wrk`` (Debian package ``wrk``): its Lua script builds each request's body, so the load
generator is not the bottleneck.

    .venv/bin/python benchmarks/bench_concurrency.py [--clients 1,8,32,64] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from illicitflows.transactions.simulate import SimulationConfig, simulate_transactions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import (  # noqa: E402
    api_frame,
    running_service,
    train,
    wait_for_model,
)

#: Records stamped this far behind the newest one at most (the default lateness is 10 min).
JITTER_S = 300

#: wrk script: each request is one record, a template's fields with a unique id and a
#: timestamp of ``base`` plus the seconds elapsed, less a random delay; answers are counted by
#: status; ``done`` prints the summary as JSON.
LUA = r"""
local templates = dofile(os.getenv("BENCH_TEMPLATES"))
local base = tonumber(os.getenv("BENCH_BASE"))
local jitter = tonumber(os.getenv("BENCH_JITTER"))
local run = os.getenv("BENCH_RUN")
local score = os.getenv("BENCH_PATH") ~= "/livez"
local threads = {}
local counter = 0
local id = 0
local started = os.time()
statuses = {}  -- global: done() reads it from each thread

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  math.randomseed(tid * 7919 + os.time())
end

function request()
  if not score then
    return wrk.format("GET", "/livez")
  end
  counter = counter + 1
  local stamp = base + (os.time() - started) - math.random(0, jitter)
  local record = '{"id":"' .. run .. '-' .. tid .. '-' .. counter .. '","timestamp":"'
    .. os.date("!%Y-%m-%dT%H:%M:%S", stamp) .. '",'
    .. templates[(counter % #templates) + 1] .. '}'
  return wrk.format("POST", nil, nil, '{"transactions":[' .. record .. ']}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local mine = thread:get("statuses")
    for status, n in pairs(mine) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, '"' .. status .. '":' .. n)
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, table.concat(parts, ",")))
end
"""


def templates(frame: pd.DataFrame, path: Path) -> None:
    """A Lua file returning the records' fields but id and timestamp, as JSON members."""
    fields = api_frame(frame).drop(columns=["timestamp"]).to_dict(orient="records")
    members = [json.dumps(record)[1:-1] for record in fields]
    path.write_text("return {\n" + ",\n".join(f"[==[{m}]==]" for m in members) + "\n}\n")


def wrk(port: int, path: str, clients: int, seconds: int, env: dict[str, str],
        script: Path, threads: int) -> dict:
    """One wrk run; its JSON summary with requests/s, errors and refused records."""
    command = ["wrk", "-t", str(min(threads, clients)), "-c", str(clients), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env},
                          timeout=seconds + 120, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    statuses = {int(k): v for k, v in summary.pop("statuses").items()}
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    summary.update(
        requests_per_s=summary["requests"] / (summary.pop("duration_us") / 1e6),
        statuses=statuses, errors=summary["socket_errors"]
        + sum(n for status, n in statuses.items() if status >= 500),
        refused=sum(n for status, n in statuses.items() if 400 <= status < 500),
        ok=ok)
    return summary


#: Where a sampled stack spends its time, by the first of these its frames name (outermost
#: first is not what counts: the innermost match wins).
PLACES = {"score_batch": "scoring thread (features, predict, explain, history)",
          "_validated": "validation", "transform": "features", "explain": "explanations",
          "score_features": "predict", "HistoryStore": "history store", "append": "history store",
          "_answer": "roll-ups and rendering", "commit": "waiting for the audit commit",
          "_insert": "audit insert", "log_batches": "audit log", "serve": "audit writer",
          "json_body": "request parsing", "authorize": "authentication",
          "h11": "HTTP (h11)", "httptools": "HTTP (httptools)", "uvicorn": "HTTP server",
          "starlette": "ASGI framework", "fastapi": "ASGI framework",
          "bentoml": "BentoML middlewares", "asyncio": "event loop"}


def profile(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample the server's processes (py-spy) while a run goes on."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses",
                             "--duration", str(seconds), "--rate", "200", "--format", "raw",
                             "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(raw: Path, top: int = 25) -> dict:
    """Shares of the samples (CPU only: idle threads are not sampled) by the innermost
    :data:`PLACES` each stack passes through, and the functions seen most at the top."""
    places: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        place = "other"
        for frame in frames:
            for key, name in PLACES.items():
                if key in frame:
                    place = name
        places[place] = places.get(place, 0) + n
        leaf = frames[-1].split(" (")[0]
        leaves[leaf] = leaves.get(leaf, 0) + n
    share = {k: round(v / max(total, 1), 3) for k, v in sorted(places.items(),
                                                                key=lambda kv: -kv[1])}
    leaf_share = {k: round(v / max(total, 1), 3)
                  for k, v in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]}
    return {"samples": total, "by_place": share, "top_functions": leaf_share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--history-days", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--port", type=int, default=3933)
    parser.add_argument("--profile-clients", type=int, default=0,
                        help="sample the server with py-spy during the scoring run with this "
                             "many clients (0: no profile)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    load_at_start = os.getloadavg()
    frame = simulate_transactions(SimulationConfig(accounts=5000, days=args.history_days,
                                                   seed=13)).frame
    frame = frame.drop(columns=["typology", "attempt_id"]).reset_index(drop=True)
    detector = train(frame, args.rounds)
    with tempfile.TemporaryDirectory() as tmp, running_service(detector, args.port) as (
            pid, key):
        root = Path(tmp)
        script, fields = root / "score.lua", root / "templates.lua"
        script.write_text(LUA.replace('wrk.format("POST", nil, nil,',
                                      'wrk.format("POST", nil, {["Authorization"]="Bearer '
                                      + key + '", ["Content-Type"]="application/json"},'))
        templates(frame.sample(2000, random_state=0), fields)
        load_s = wait_for_model(args.port, key)
        # the stream continues the simulated days: its clock starts after them
        base = int(pd.Timestamp(frame["timestamp"].max()).timestamp()) + 3600
        runs, profiled = {}, None
        for clients in map(int, args.clients.split(",")):
            env = {"BENCH_TEMPLATES": str(fields), "BENCH_JITTER": str(JITTER_S),
                   "BENCH_RUN": f"n{clients}", "BENCH_BASE": str(base)}
            sampler = (profile(pid, max(1, args.seconds - 2), root / "profile.txt")
                       if clients == args.profile_clients else None)
            scored = wrk(args.port, "/v1/transactions/score", clients, args.seconds,
                         {**env, "BENCH_PATH": "/v1/transactions/score"}, script,
                         args.wrk_threads)
            if sampler is not None:
                sampler.wait(timeout=120)
                profiled = profile_summary(root / "profile.txt")
            base += args.seconds + 5
            bare = wrk(args.port, "/livez", clients, args.seconds,
                       {**env, "BENCH_PATH": "/livez"}, script, args.wrk_threads)
            runs[str(clients)] = {
                "score": scored, "livez": bare,
                "ratio_to_livez": scored["requests_per_s"] / bare["requests_per_s"],
                "load_average_after": os.getloadavg()}
        time.sleep(1)
        stages = httpx.get(f"http://127.0.0.1:{args.port}/metrics").text
    print(json.dumps({
        "seconds_per_run": args.seconds, "startup_load_s": load_s, "jitter_s": JITTER_S,
        "runs": runs, "profile": profiled,
        "stage_seconds_sum": {line.split("stage=")[1].split('"')[1]: float(line.split()[-1])
                              for line in stages.splitlines()
                              if line.startswith("illicitflows_stage_seconds_sum")
                              and 'detector="transactions"' in line},
        "targets": {"errors": 0, "refused": 0, "ratio_to_livez_at_32": 0.5,
                    "p99_ms_at_32": 150},
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
