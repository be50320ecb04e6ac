"""Against a real server (``bentoml.serve``): readiness, scoring, decisions, replay, audit
verification and tamper detection, end to end over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from illicitflows.access.keys import KeyStore

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    """A port nobody listens on now, so that parallel runs of the suite do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = _free_port()
BASE = f"http://127.0.0.1:{PORT}"


def wait_until(check, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server did not get there in time")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tx_detector, trade_detector, champion):
    root = tmp_path_factory.mktemp("server")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {"ILLICITFLOWS_DATA_DIR": str(root), "ILLICITFLOWS_TRACKING_URI": uri,
           "BENTOML_HOME": str(root / "bentoml")}
    os.environ.update(env)
    champion(tx_detector, uri)
    keys = KeyStore()
    secrets = {role: keys.create(role)[1] for role in ("scorer", "auditor", "admin")}
    import bentoml

    handle = bentoml.serve("illicitflows.serving.service:IllicitFlows", port=PORT,
                           host="127.0.0.1", working_dir=str(Path.cwd()))
    try:
        wait_until(lambda: httpx.get(f"{BASE}/livez").status_code == 200)
        yield {"root": root, "uri": uri, "keys": secrets, "trade": trade_detector,
               "register": champion}
    finally:
        handle.stop()
        for name in env:
            os.environ.pop(name, None)


def cli(*args: str, root: Path, uri: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ILLICITFLOWS_DATA_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "illicitflows.cli", *args, "--tracking-uri",
                           uri] if args[0] == "audit" and args[1] == "replay" else
                          [sys.executable, "-m", "illicitflows.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_ready_only_when_both_detectors_are_loaded(server) -> None:
    auditor = {"Authorization": f"Bearer {server['keys']['auditor']}"}
    wait_until(lambda: httpx.get(f"{BASE}/v1/models", headers=auditor).json() != [])
    assert httpx.get(f"{BASE}/readyz").status_code != 200  # trade champion still missing
    server["register"](server["trade"], server["uri"])
    runtime_reload = httpx.post(f"{BASE}/v1/admin/reload", timeout=120, headers={
        "Authorization": f"Bearer {server['keys']['admin']}"})  # loads both models: slow under load
    assert runtime_reload.status_code == 200, runtime_reload.text
    wait_until(lambda: httpx.get(f"{BASE}/readyz").status_code == 200)
    models = {m["detector"]: m
              for m in httpx.get(f"{BASE}/v1/models", headers=auditor, timeout=60).json()}
    assert set(models) == {"transactions", "trade"}
    assert models["trade"]["version"] == "1"


def test_trade_declarations_are_scored_with_importer_roll_up(server, declarations) -> None:
    wait_until(lambda: httpx.get(f"{BASE}/readyz").status_code == 200)
    records = declarations.tail(50).drop(columns=["fraud", "typology", "revenue"])
    records["date"] = records["date"].dt.strftime("%Y-%m-%d")
    body = {"declarations": json.loads(records.to_json(orient="records"))}
    answer = httpx.post(f"{BASE}/v1/trade/score", json=body, timeout=120,
                        headers={"Authorization": f"Bearer {server['keys']['scorer']}"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert len(result["results"]) == 50 and result["importers"]


def test_score_then_read_replay_verify_and_detect_tampering(server, transactions,
                                                            api_records) -> None:
    headers = {"Authorization": f"Bearer {server['keys']['scorer']}"}
    body = {"transactions": api_records(transactions.iloc[:1200])}  # holds flagged ones
    answer = httpx.post(f"{BASE}/v1/transactions/score", json=body, headers=headers,
                        timeout=120)
    assert answer.status_code == 200, answer.text
    flagged = [r for r in answer.json()["results"] if r["flagged"]]
    assert flagged
    decision_id = flagged[0]["decision_id"]
    auditor = {"Authorization": f"Bearer {server['keys']['auditor']}"}
    stored = httpx.get(f"{BASE}/v1/decisions/{decision_id}", headers=auditor).json()
    assert stored["decision_id"] == decision_id and stored["flagged"]
    assert httpx.get(f"{BASE}/v1/decisions/{decision_id}", headers=headers).status_code == 403
    metrics = httpx.get(f"{BASE}/metrics")
    assert metrics.status_code == 200
    for stage in ("auth", "parse", "validate", "features", "predict", "explain", "history",
                  "audit", "respond"):
        assert (f'illicitflows_stage_seconds_count{{detector="transactions",stage="{stage}"}}'
                in metrics.text), stage

    root, uri = server["root"], server["uri"]
    replay = cli("audit", "replay", decision_id, root=root, uri=uri)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "MATCHES" in replay.stdout + replay.stderr
    assert cli("audit", "verify", root=root, uri=uri).returncode == 0
    import sqlite3

    with sqlite3.connect(root / "audit.db") as db:
        db.execute("UPDATE audit_decisions SET flagged = 0 WHERE decision_id = ?",
                   (decision_id,))
    broken = cli("audit", "verify", root=root, uri=uri)
    assert broken.returncode == 1
    assert decision_id in broken.stdout + broken.stderr
