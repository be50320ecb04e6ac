"""The HTTP API in process: role matrix, bad-input matrix, decisions, replay, tamper check."""

from __future__ import annotations

import gc
import json

import prometheus_client
import pytest
from fastapi.testclient import TestClient

from illicitflows.audit.store import AuditLog
from illicitflows.serving.app import app
from illicitflows.serving.runtime import Runtime, Settings
from illicitflows.serving.schemas import ScoreResponse


@pytest.fixture
def api(tmp_path, tx_detector, tx_model):
    settings = Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                        keys_url=f"sqlite:///{tmp_path / 'keys.db'}", max_records=500)
    runtime = Runtime(settings)
    app.state.runtime = runtime
    keys = {role: runtime.keys.create(role)[1]
            for role in ("scorer", "analyst", "auditor", "admin")}
    client = TestClient(app)
    yield client, runtime, keys, tx_detector, tx_model
    runtime.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def requests_counted(status: int) -> float:
    return prometheus_client.REGISTRY.get_sample_value(
        "illicitflows_requests_total",
        {"endpoint": "/transactions/score", "status": str(status)}) or 0.0


def test_not_ready_until_loaded_then_scores(api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    body = {"transactions": api_records(transactions.iloc[:50])}
    assert not runtime.ready
    counted = {status: requests_counted(status) for status in (200, 503)}
    busy = client.post("/transactions/score", json=body, headers=bearer(keys["scorer"]))
    assert busy.status_code == 503
    runtime.add_scorer(detector, model)
    answer = client.post("/transactions/score", json=body, headers=bearer(keys["scorer"]))
    assert answer.status_code == 200, answer.text
    assert {status: requests_counted(status) - n for status, n in counted.items()} == {
        200: 1, 503: 1}
    result = answer.json()
    assert ScoreResponse.model_validate(result).model_dump(exclude_none=True) == result
    assert len(result["results"]) == 50 and result["accounts"] and "networks" in result
    first = result["results"][0]
    assert set(first) >= {"id", "decision_id", "score", "flagged", "threshold", "risk_band",
                          "reasons", "model"}
    assert first["model"] == {"name": model.name, "version": model.version}


@pytest.mark.parametrize(("role", "method", "path", "status"), [
    (None, "post", "/transactions/score", 401),
    ("bogus", "post", "/transactions/score", 401),
    ("auditor", "post", "/transactions/score", 403),
    ("scorer", "get", "/decisions", 403),
    ("scorer", "get", "/models", 403),
    ("auditor", "get", "/decisions", 200),
    ("auditor", "get", "/models", 200),
    ("analyst", "get", "/decisions", 200),
    ("analyst", "post", "/transactions/score", 403),
    ("admin", "get", "/decisions", 200),
    ("admin", "post", "/transactions/score", 200),
    ("scorer", "post", "/transactions/score", 200),
])
def test_role_matrix(api, transactions, api_records, role, method, path, status) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    headers = {} if role is None else bearer(keys.get(role, "ifk_nope_nope"))
    kwargs = {"json": {"transactions": api_records(transactions.iloc[:5])}} \
        if method == "post" else {}
    answer = getattr(client, method)(path, headers=headers, **kwargs)
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert "detail" in answer.json()


def test_bad_input_matrix(api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    headers = bearer(keys["scorer"])
    records = api_records(transactions.iloc[:3])
    records[1]["amount_paid"] = "lots"
    records[2]["payment_currency"] = "Doubloon"
    bad = client.post("/transactions/score", json={"transactions": records}, headers=headers)
    assert bad.status_code == 422
    errors = {(e["index"], e["field"], e["reason"]) for e in bad.json()["errors"]}
    assert errors == {(1, "amount_paid", "not a number"),
                      (2, "payment_currency", "unknown payment currency")}
    too_many = {"transactions": api_records(transactions.iloc[:501])}
    assert client.post("/transactions/score", json=too_many, headers=headers).status_code == 413
    text = client.post("/transactions/score", content="a,b", headers={
        **headers, "Content-Type": "text/csv"})
    assert text.status_code == 415
    for body in ("{not json", "[1, 2]", '{"transactions": []}', '{"transactions": [1]}',
                 '{"transactions": "x"}', '{"transactions": [{}], "explain": "why"}'):
        answer = client.post("/transactions/score", content=body, headers={
            **headers, "Content-Type": "application/json"})
        assert answer.status_code == 422, (body, answer.text)
    surrogate = api_records(transactions.iloc[:1])  # text no UTF-8 can hold
    surrogate[0]["from_account"] = "\udcff"
    for body in (b'{"transactions": [\xff]}', json.dumps({"transactions": surrogate}),
                 json.dumps({"transactions": api_records(transactions.iloc[:1])}).encode(
                     "utf-16")):
        answer = client.post("/transactions/score", content=body, headers={
            **headers, "Content-Type": "application/json"})
        assert answer.status_code == 422 and "not valid JSON" in answer.json()["detail"]
    missing = client.post("/transactions/score", json={"transactions": [{"amount_paid": 1}]},
                          headers=headers)
    assert missing.status_code == 422
    assert any(e["field"] == "timestamp" for e in missing.json()["errors"])


def test_decision_is_logged_readable_replayable_and_tamper_evident(
        api, transactions, api_records, monkeypatch) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    answer = client.post("/transactions/score", headers=bearer(keys["scorer"]),
                         json={"transactions": api_records(transactions.iloc[:400])})
    flagged = [r for r in answer.json()["results"] if r["flagged"]]
    assert flagged
    decision_id = flagged[0]["decision_id"]
    got = client.get(f"/decisions/{decision_id}", headers=bearer(keys["auditor"]))
    assert got.status_code == 200
    stored = got.json()
    assert stored["score"] == pytest.approx(flagged[0]["score"], abs=1e-12)
    assert stored["model_version"] == model.version and stored["record_sha256"]
    assert stored["explanation"]["reasons"]
    page = client.get("/decisions", params={"flagged": True, "page_size": 5},
                      headers=bearer(keys["auditor"])).json()
    assert page["total"] == len(flagged) and len(page["items"]) == min(5, len(flagged))
    assert client.get("/decisions/nope", headers=bearer(keys["auditor"])).status_code == 404

    from illicitflows.serving import replay as replay_module
    monkeypatch.setattr(replay_module, "load_detector", lambda domain, ref: (detector, None))
    report = replay_module.replay_decision(decision_id, runtime.audit, runtime.history_url())
    assert report.ok, report

    audit = AuditLog(runtime.settings.audit_url)
    assert audit.verify().ok
    with audit._engine.begin() as connection:  # an insider edits a logged score
        connection.exec_driver_sql("UPDATE audit_decisions SET score = 0.0 WHERE decision_id = ?",
                                   (decision_id,))
    broken = audit.verify()
    assert not broken.ok and broken.first_bad_decision_id == decision_id


def test_a_lost_history_takes_the_detector_out_of_service_until_it_is_restored(
        api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    records = api_records(transactions.iloc[:300])
    headers = bearer(keys["scorer"])
    scorer = runtime.add_scorer(detector, model)
    assert client.post("/transactions/score", headers=headers,
                       json={"transactions": records[:100]}).status_code == 200

    def disk_full(*_: object) -> None:
        raise OSError("disk full")

    scorer.store.append = disk_full
    lost = client.post("/transactions/score", headers=headers,
                       json={"transactions": records[100:200]})
    assert lost.status_code == 503
    assert "history store failed (disk full)" in lost.json()["detail"]
    assert "decisions were logged" in lost.json()["detail"]
    assert not runtime.ready
    assert client.post("/transactions/score", headers=headers,
                       json={"transactions": records[200:]}).status_code == 503
    restored = runtime.add_scorer(detector, model)  # as a reload or a restart does
    assert len(restored.store.load()) == 200  # the logged decisions, back from the audit log
    answer = client.post("/transactions/score", headers=headers,
                         json={"transactions": records[200:]})
    offline = detector.score(transactions.iloc[:300])["score"].to_numpy()[200:]
    assert max(abs(a - r["score"]) for a, r in zip(offline, answer.json()["results"],
                                                   strict=True)) <= 1e-9


def test_without_a_writer_process_the_request_logs_its_decisions(
        tmp_path, transactions, api_records, tx_detector, tx_model) -> None:
    runtime = Runtime(Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                               audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                               keys_url=f"sqlite:///{tmp_path / 'keys.db'}",
                               audit_writer="inline"))
    assert runtime.writer is None
    app.state.runtime = runtime
    runtime.add_scorer(tx_detector, tx_model)
    answer = TestClient(app).post("/transactions/score",
                                  headers=bearer(runtime.keys.create("scorer")[1]),
                                  json={"transactions": api_records(transactions.iloc[:30])})
    assert answer.status_code == 200, answer.text
    logged = runtime.audit.query(page_size=100).items
    assert [d.decision_id for d in logged] == [r["decision_id"] for r in answer.json()["results"]]
    assert runtime.audit.verify().ok
    with pytest.raises(ValueError, match="ILLICITFLOWS_AUDIT_WRITER"):
        Runtime(Settings(audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                         keys_url=f"sqlite:///{tmp_path / 'keys.db'}", audit_writer="thread"))


def test_streaming_through_the_api_matches_one_request_and_offline(
        tmp_path, api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    records = api_records(transactions.iloc[:1000])
    runtime.add_scorer(detector, model)
    headers = bearer(keys["scorer"])
    streamed = []
    for start in range(0, 1000, 100):
        answer = client.post("/transactions/score", headers=headers,
                             json={"transactions": records[start:start + 100]})
        streamed += [r["score"] for r in answer.json()["results"]]
    runtime.settings.history_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    runtime.settings.max_records = 1000
    runtime.add_scorer(detector, model)  # a second service with an empty history
    single = client.post("/transactions/score", headers=headers,
                         json={"transactions": records}).json()["results"]
    offline = detector.score(transactions.iloc[:1000])["score"].to_numpy()
    assert max(abs(a - b["score"]) for a, b in zip(streamed, single, strict=True)) <= 1e-9
    assert max(abs(a - b) for a, b in zip(streamed, offline, strict=True)) <= 1e-9


def test_loading_freezes_what_is_loaded_out_of_the_collector(tmp_path) -> None:
    settings = Settings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                        history_url=f"sqlite:///{tmp_path / 'history.db'}",
                        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                        keys_url=f"sqlite:///{tmp_path / 'keys.db'}")
    runtime = Runtime(settings)
    gc.unfreeze()
    try:
        runtime.load()  # an empty registry: nothing to serve, the rest is loaded all the same
        assert set(runtime.problems) == {"transactions", "trade"}
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_decisions_the_log_cannot_take_leave_the_writer_free(
        api, transactions, api_records, monkeypatch) -> None:
    client, runtime, keys, detector, model = api
    scorer = runtime.add_scorer(detector, model)
    records = api_records(transactions.iloc[:40])
    score_features = scorer.detector.score_features
    monkeypatch.setattr(scorer.detector, "score_features",
                        lambda features: score_features(features) * float("nan"))
    with pytest.raises(ValueError, match="finite"):  # refused before it reached the writer
        client.post("/transactions/score", headers=bearer(keys["scorer"]),
                    json={"transactions": records[:20]})
    assert not runtime.writer._lock.locked()
    monkeypatch.setattr(scorer.detector, "score_features", score_features)
    answer = client.post("/transactions/score", headers=bearer(keys["scorer"]),
                         json={"transactions": records[:20]})
    assert answer.status_code == 200, answer.text
