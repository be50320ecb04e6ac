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
    (None, "post", "/transactions/review", 401),
    ("scorer", "post", "/transactions/review", 403),
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
    runtime.settings.max_records = 1200  # the first 1,200 transfers hold flagged ones
    answer = client.post("/transactions/score", headers=bearer(keys["scorer"]),
                         json={"transactions": api_records(transactions.iloc[:1200])})
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


def bad_fields(answer) -> set[tuple]:
    return {(e["index"], e["field"]) for e in answer.json()["errors"]}


def test_body_over_the_byte_limit_is_refused_before_parsing(api, transactions,
                                                            api_records) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    runtime.settings.max_body_bytes = 20_000
    headers = {**bearer(keys["scorer"]), "Content-Type": "application/json"}
    small = json.dumps({"transactions": api_records(transactions.iloc[:5])})
    assert client.post("/transactions/score", content=small, headers=headers).status_code == 200
    big = json.dumps({"transactions": api_records(transactions.iloc[:200])})
    assert len(big) > 20_000
    declared = client.post("/transactions/score", content=big, headers=headers)
    assert declared.status_code == 413 and "20,000" in declared.json()["detail"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for start in range(0, len(big), 4096):
            yield big[start:start + 4096].encode()

    streamed = client.post("/transactions/score", content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text
    lying = client.post("/transactions/score", content=big, headers={
        **headers, "Content-Length": "10"})  # a client that lies about its length
    assert lying.status_code in (400, 413, 422), lying.text


def test_values_beyond_the_limits_name_record_and_field(api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    headers = bearer(keys["scorer"])
    records = api_records(transactions.iloc[:4])
    records[0]["from_account"] = "A" * 5000
    records[1]["amount_paid"] = 1e300
    records[2]["amount_received"] = 10**400
    records[3]["to_bank"] = {"nested": [1, [2, [3]]]}
    answer = client.post("/transactions/score", json={"transactions": records}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert bad_fields(answer) == {(0, "from_account"), (1, "amount_paid"),
                                  (2, "amount_received"), (3, "to_bank")}
    assert runtime.audit.query().total == 0  # nothing went into the audit log
    runtime.settings.max_text_chars = 10_000
    records = api_records(transactions.iloc[:1])
    records[0]["from_account"] = "A" * 5000
    allowed = client.post("/transactions/score", json={"transactions": records},
                          headers=headers)
    assert allowed.status_code == 200, allowed.text


HOSTILE = [  # (what, body text) with RECORD a good record, AMOUNT one without amount_paid
    ("boolean top_k", '{"transactions": [RECORD], "top_k": true}'),
    ("fractional top_k", '{"transactions": [RECORD], "top_k": 5.0}'),
    ("zero top_k", '{"transactions": [RECORD], "top_k": 0}'),
    ("list explain", '{"transactions": [RECORD], "explain": ["all"]}'),
    ("unknown body field", '{"transactions": [RECORD], "colour": "red"}'),
    ("boolean amount", '{"transactions": [{AMOUNT, "amount_paid": true}]}'),
    ("1e400 amount", '{"transactions": [{AMOUNT, "amount_paid": 1e400}]}'),
    ("huge integer amount", '{"transactions": [{AMOUNT, "amount_paid": 1' + "0" * 400 + "}]}"),
    ("huge negative amount", '{"transactions": [{AMOUNT, "amount_paid": -1' + "0" * 400 + "}]}"),
    ("NaN amount", '{"transactions": [{AMOUNT, "amount_paid": NaN}]}'),
    ("infinite amount", '{"transactions": [{AMOUNT, "amount_paid": Infinity}]}'),
    ("deep array", "[" * 5000 + "]" * 5000),
    ("deep records", '{"transactions": ' + "[" * 300 + "]" * 300 + "}"),
]


@pytest.mark.parametrize("body", [b for _, b in HOSTILE], ids=[w for w, _ in HOSTILE])
def test_hostile_bodies_answer_422(api, transactions, api_records, body) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    record = api_records(transactions.iloc[:1])[0]
    without_amount = json.dumps({k: v for k, v in record.items() if k != "amount_paid"})
    body = body.replace("RECORD", json.dumps(record)).replace("{AMOUNT", without_amount[:-1])
    answer = client.post("/transactions/score", content=body, headers={
        **bearer(keys["scorer"]), "Content-Type": "application/json"})
    assert answer.status_code == 422, (body[:200], answer.text)
    assert answer.json()["detail"]


@pytest.mark.parametrize(("query", "field"), [
    ("from=garbage", "from"), ("to=2024-13-45", "to"),
    ("from=2024-01-01T00:00:00%2B99:00", "from"), ("from=0001-01-01T00:00:00%2B05:00", "from"),
    ("to=9999-12-31T23:59:59-05:00", "to"),
    ("page=99999999999999999999", "page"), ("page=0", "page"), ("page=1.5", "page"),
    ("page_size=100000", "page_size"), ("flagged=maybe", "flagged"),
    ("detector=crypto", "detector"), ("model_version=" + "9" * 100, "model_version"),
])
def test_every_query_parameter_is_validated_with_a_422_naming_it(api, query, field) -> None:
    client, runtime, keys, *_ = api
    answer = client.get(f"/decisions?{query}", headers=bearer(keys["auditor"]))
    assert answer.status_code == 422, answer.text
    assert field in {e["field"] for e in answer.json()["errors"]}
    assert client.get(f"/decisions?{query}").status_code == 401  # the key comes first


def test_time_filters_take_offsets(api, transactions, api_records) -> None:
    client, runtime, keys, detector, model = api
    runtime.add_scorer(detector, model)
    client.post("/transactions/score", headers=bearer(keys["scorer"]),
                json={"transactions": api_records(transactions.iloc[:3])})
    auditor = bearer(keys["auditor"])
    for params, total in [({"from": "2000-01-01T00:00:00+02:00"}, 3),
                          ({"from": "2000-01-01", "to": "2000-01-02T00:00:00Z"}, 0),
                          ({"to": "9999-01-01T00:00:00"}, 3)]:
        answer = client.get("/decisions", params=params, headers=auditor)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == total, params


def test_metrics_label_unknown_paths_as_one_bucket(api) -> None:
    client, *_ = api
    before = prometheus_client.REGISTRY.get_sample_value(
        "illicitflows_requests_total", {"endpoint": "unmatched", "status": "404"}) or 0.0
    for n in range(20):
        assert client.get(f"/nowhere/{n}").status_code == 404
    assert prometheus_client.REGISTRY.get_sample_value(
        "illicitflows_requests_total", {"endpoint": "unmatched", "status": "404"}) == before + 20
    endpoints = {s.labels.get("endpoint") for m in prometheus_client.REGISTRY.collect()
                 for s in m.samples if m.name.startswith("illicitflows_request")}
    assert not any(e and e.startswith("/nowhere") for e in endpoints)


def test_a_revoked_key_stops_working_within_the_cache_setting(api) -> None:
    client, runtime, keys, *_ = api
    runtime.settings.key_cache_seconds = 0.3
    auditor = bearer(keys["auditor"])
    assert client.get("/models", headers=auditor).status_code == 200
    from illicitflows.access.keys import KeyStore
    elsewhere = KeyStore(runtime.settings.keys_url)
    elsewhere.revoke(runtime.keys.authenticate(keys["auditor"]).key_id)
    elsewhere.close()
    import time
    time.sleep(0.35)
    assert client.get("/models", headers=auditor).status_code == 401


def test_metrics_label_the_review_pages_paths_by_route_template() -> None:
    from illicitflows.serving.traffic import UNMATCHED, route_label

    assert route_label("/ui/queue") == "/ui/queue"
    assert route_label("/ui/decisions/0190b1d2") == "/ui/decisions/{decision_id}"
    assert route_label("/ui/decisions/0190b1d2/network") == "/ui/decisions/{decision_id}/network"
    assert route_label("/ui") == route_label("/ui/") == "/ui/"
    assert route_label("/ui/made-up/1") == UNMATCHED
    assert route_label("/v1/ui/queue") == UNMATCHED  # the page has one address: /ui
    assert route_label("/v1/decisions/0190b1d2") == "/v1/decisions/{decision_id}"
