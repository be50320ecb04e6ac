"""``GET /v1/decisions/{id}/proof``: an auditor gets a decision's inclusion proof against the
latest signed checkpoint covering it, and checks it with the public key alone."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from illicitflows.audit import DecisionInput
from illicitflows.audit.checkpoints import FILE_ENV, append_checkpoint, check_proof, sign_head
from illicitflows.audit.signing import generate_keys, load_private_key, load_public_keys
from illicitflows.serving.app import app
from illicitflows.serving.runtime import Runtime, Settings


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "checkpoints.jsonl"))
    settings = Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                        keys_url=f"sqlite:///{tmp_path / 'keys.db'}", audit_writer="inline")
    runtime = Runtime(settings)
    app.state.runtime = runtime
    keys = {role: runtime.keys.create(role)[1] for role in ("scorer", "auditor")}
    yield TestClient(app), runtime, keys, tmp_path
    runtime.close()


def test_an_auditor_proves_a_decision_with_the_public_key_alone(api) -> None:
    client, runtime, keys, tmp_path = api
    generate_keys(tmp_path / "k", tmp_path / "k.pub")
    stored = runtime.audit.append([DecisionInput(
        request_id="r", detector="trade", model_name="m", model_version="1",
        record={"declared_value": float(i), "date": datetime(2023, 1, 1)}, score=0.1,
        threshold=0.5, flagged=False) for i in range(40)])
    auditor = {"Authorization": f"Bearer {keys['auditor']}"}
    url = f"/decisions/{stored[7].decision_id}/proof"
    assert client.get(url, headers=auditor).status_code == 409  # no checkpoint yet
    append_checkpoint(tmp_path / "checkpoints.jsonl",
                      sign_head(runtime.audit, load_private_key(tmp_path / "k")))
    answer = client.get(url, headers=auditor)
    assert answer.status_code == 200, answer.text
    proof = answer.json()
    assert (proof["seq"], proof["tree_size"]) == (8, 40)
    check_proof(proof, load_public_keys([tmp_path / "k.pub"]))
    assert client.get(url, headers={"Authorization": f"Bearer {keys['scorer']}"}
                      ).status_code == 403
    assert client.get(url).status_code == 401
    missing = client.get("/decisions/00000000-0000-7000-8000-000000000000/proof",
                         headers=auditor)
    assert missing.status_code == 404
