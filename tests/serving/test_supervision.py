"""Process supervision and durability against a real ``illicitflows serve``: a client scores in
a loop while the audit writer, the worker and then the server itself are killed with SIGKILL at
random moments. Killing the server leaves no worker or writer behind, so a new server starts
on the same port; each time the service comes back ready; every decision acknowledged with a
200 is in the audit log, whose chain verifies against the checkpoints the service signed; a
stopped (SIGTERM) server leaves nothing running either, and signs its last head."""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from illicitflows.access.keys import KeyStore
from illicitflows.audit.checkpoints import INTERVAL_ENV, KEY_ENV, read_checkpoints
from illicitflows.audit.signing import generate_keys

pytestmark = pytest.mark.e2e
RECORDS_PER_REQUEST = 20
#: Bounds of the client loop: requests and seconds per phase.
MAX_REQUESTS, MAX_PHASE_S = 400, 60.0
READY_TIMEOUT_S = 240.0


def _helpers():
    """``wait_until`` and ``_free_port`` of the server tests."""
    spec = importlib.util.spec_from_file_location(
        "illicitflows_tests_server", Path(__file__).with_name("test_server.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server_tests = _helpers()


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], seconds: float = 60.0) -> list[int]:
    """The pids still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(map(alive, pids)):
        time.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


class Server:
    """``illicitflows serve`` on a port, in a session of its own."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "illicitflows.cli", "serve", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def wait_ready(self) -> None:
        server_tests.wait_until(lambda: httpx.get(f"{self.base}/readyz").status_code == 200,
                                READY_TIMEOUT_S)

    def worker(self) -> int:
        return next(pid for pid in children(self.process.pid)
                    if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes())

    def writer(self) -> int:
        return next(pid for pid in descendants(self.process.pid)
                    if b"audit.writer" in Path(f"/proc/{pid}/cmdline").read_bytes())


class Client:
    """Scores consecutive slices of the records in a thread; keeps the decision ids of every
    200 (bounded in requests and time)."""

    def __init__(self, base: str, key: str, records: list[dict]) -> None:
        self.base, self.records = base, records
        self.headers = {"Authorization": f"Bearer {key}"}
        self.acknowledged: list[str] = []
        self.statuses: list[int] = []
        self.next = 0

    def run(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + MAX_PHASE_S
        with httpx.Client(timeout=60) as client:
            while not stop.is_set() and time.monotonic() < deadline \
                    and len(self.statuses) < MAX_REQUESTS \
                    and self.next + RECORDS_PER_REQUEST <= len(self.records):
                body = {"transactions": self.records[self.next:self.next + RECORDS_PER_REQUEST]}
                self.next += RECORDS_PER_REQUEST
                try:
                    answer = client.post(f"{self.base}/v1/transactions/score", json=body,
                                         headers=self.headers)
                except httpx.HTTPError:
                    self.statuses.append(0)
                    time.sleep(0.1)
                    continue
                self.statuses.append(answer.status_code)
                if answer.status_code == 200:
                    self.acknowledged += [r["decision_id"] for r in answer.json()["results"]]

    def phase(self, seconds: float) -> int:
        """Score for ``seconds`` (at least until one answer); how many 200s it got."""
        before, answers = self.statuses.count(200), len(self.statuses)
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,))
        thread.start()
        time.sleep(seconds)
        while thread.is_alive() and len(self.statuses) == answers:
            time.sleep(0.1)
        stop.set()
        thread.join(MAX_PHASE_S + 60)
        return self.statuses.count(200) - before


@pytest.fixture(scope="module")
def served(tmp_path_factory, tx_detector, trade_detector, champion):
    root = tmp_path_factory.mktemp("supervised")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    generate_keys(root / "checkpoint.key", root / "checkpoint.pub")
    env = {"ILLICITFLOWS_DATA_DIR": str(root), "ILLICITFLOWS_TRACKING_URI": uri,
           "BENTOML_HOME": str(root / "bentoml"), KEY_ENV: str(root / "checkpoint.key"),
           INTERVAL_ENV: "1"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        champion(tx_detector, uri)
        champion(trade_detector, uri)
        key = KeyStore().create("admin")[1]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"root": root, "env": {**os.environ, **env}, "key": key}


def test_kill_9_of_writer_worker_and_server_loses_no_acknowledged_decision(
        served, transactions, api_records) -> None:
    root, env = served["root"], served["env"]
    port, log = server_tests._free_port(), root / "serve.log"
    records = api_records(transactions.sort_values("timestamp", kind="stable")
                          .head(MAX_REQUESTS * RECORDS_PER_REQUEST))
    chance = random.Random(17)
    server = Server(port, env, log)
    started = [server]
    try:
        server.wait_ready()
        client = Client(server.base, served["key"], records)
        assert client.phase(1.0) > 0

        for victim in ("writer", "worker"):
            client.phase(chance.uniform(0.3, 1.5))
            pid = getattr(server, victim)()
            os.kill(pid, signal.SIGKILL)
            assert wait_gone([pid], 10) == []
            server.wait_ready()
            assert client.phase(1.0) > 0, f"no 200 after kill -9 of the {victim}"

        client.phase(chance.uniform(0.3, 1.5))
        left_behind = descendants(server.process.pid)
        assert left_behind, "the server has its worker and writer"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(30)
        assert wait_gone(left_behind) == [], "orphans after kill -9 of the server"

        server = Server(port, env, log)  # the same port: nothing holds it any more
        started.append(server)
        server.wait_ready()
        assert client.phase(1.0) > 0, "no 200 from the restarted server"
        left_behind = descendants(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(120)
        assert wait_gone(left_behind) == [], "processes left after SIGTERM of the server"
    finally:
        for each in started:
            if each.process.poll() is None:
                os.killpg(each.process.pid, signal.SIGKILL)
                each.process.wait(30)

    assert len(client.acknowledged) >= 4 * RECORDS_PER_REQUEST
    with closing(sqlite3.connect(root / "audit.db")) as db:
        logged = {row[0] for row in db.execute("SELECT decision_id FROM audit_decisions")}
    missing = set(client.acknowledged) - logged
    assert not missing, f"{len(missing)} acknowledged decision(s) not in the audit log"
    verify = subprocess.run([sys.executable, "-m", "illicitflows.cli", "audit", "verify",
                             "--public-key", str(root / "checkpoint.pub")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "signed checkpoint" in verify.stdout + verify.stderr
    assert read_checkpoints(root / "checkpoints.jsonl")[-1].tree_size == len(logged), \
        "the stopped server signed its last head"
