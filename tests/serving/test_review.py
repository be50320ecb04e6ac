"""``POST /v1/transactions/review``: the retrospective account review of a period of the stored
history, through the command line's review code, logged in the audit chain."""

from __future__ import annotations

import dataclasses
import json

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from illicitflows.audit.canonical import canonical_json, sha256_hex
from illicitflows.audit.reviews import ReviewLog
from illicitflows.cli import app as cli
from illicitflows.jobs.account_review import fit_and_evaluate
from illicitflows.modeling.split import split_by_fractions
from illicitflows.serving.app import app
from illicitflows.serving.engine import ModelRef
from illicitflows.serving.runtime import Runtime, Settings
from illicitflows.tracking.registry import load_detector, log_and_register
from illicitflows.tracking.setup import configure, use_experiment

SCORED = 1500  # the last transfers of the simulated days, scored through the API
RESULT_FIELDS = ("accounts", "networks", "transfers_read", "skipped")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tx_detector, transactions):
    """The serving tests' detector with an account ranker (fitted on its validation period),
    registered in a temporary MLflow registry: (tracking URI, version)."""
    scores = tx_detector.score_features(tx_detector.features(transactions))
    fitted = fit_and_evaluate(transactions, split_by_fractions(transactions["timestamp"]),
                              scores, tx_detector.threshold, None, seed=0)
    assert fitted.ranker is not None
    ranked = dataclasses.replace(tx_detector, account_ranker=fitted.ranker)
    uri = f"sqlite:///{tmp_path_factory.mktemp('review-registry') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    configure(uri)
    use_experiment("transactions", uri)
    with mlflow.start_run():
        version = log_and_register(ranked).version
    yield uri, str(version)
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


@pytest.fixture
def service(tmp_path, registry, transactions, api_records):
    """A service running the registered detector, keys of every role, and the last
    :data:`SCORED` transfers scored (all but the final hour; ``later``: that hour's records)."""
    uri, version = registry
    configure(uri)
    detector, registered = load_detector("transactions", version)
    runtime = Runtime(Settings(history_url=f"sqlite:///{tmp_path / 'history.db'}",
                               audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                               keys_url=f"sqlite:///{tmp_path / 'keys.db'}",
                               audit_writer="inline"))
    app.state.runtime = runtime
    runtime.add_scorer(detector, ModelRef(registered.name, str(registered.version),
                                          registered.run_id))
    keys = {role: runtime.keys.create(role)[1] for role in ("scorer", "analyst", "auditor",
                                                             "admin")}
    client = TestClient(app)
    frame = transactions.iloc[-SCORED:]
    cut = frame["timestamp"].iloc[-1].floor("h")  # the last hour comes later
    earlier, later = frame[frame["timestamp"] < cut], frame[frame["timestamp"] >= cut]
    assert len(later) > 10
    scored = client.post("/transactions/score", headers=bearer(keys["scorer"]),
                         json={"transactions": api_records(earlier)})
    assert scored.status_code == 200, scored.text
    yield {"client": client, "runtime": runtime, "keys": keys, "uri": uri, "version": version,
           "earlier": earlier, "later": later, "cut": cut,
           "from": earlier["timestamp"].iloc[0].floor("h")}
    runtime.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def period(service, to: pd.Timestamp | None = None, top: int = 50) -> dict:
    return {"from": service["from"].isoformat(), "to": (to or service["cut"]).isoformat(),
            "top": top}


def review(service, role: str = "analyst", **body) -> dict:
    answer = service["client"].post("/transactions/review", headers=bearer(
        service["keys"][role]), json=body or period(service))
    assert answer.status_code == 200, answer.text
    return answer.json()


def ranking(accounts: list[dict]) -> list[tuple]:
    """Rank, account and flag of each account, in order."""
    return [(a["rank"], a["bank"], a["account"], a["flagged"]) for a in accounts]


def scores(accounts: list[dict]) -> list[float]:
    return [a["review_score"] for a in accounts]


def test_analysts_auditors_and_admins_review_scorers_do_not(service) -> None:
    for role, status in ((None, 401), ("scorer", 403), ("analyst", 200), ("auditor", 200),
                         ("admin", 200)):
        headers = {} if role is None else bearer(service["keys"][role])
        answer = service["client"].post("/transactions/review", headers=headers,
                                        json=period(service))
        assert answer.status_code == status, (role, answer.text)
        if status == 200:
            assert answer.json()["model"] == {"name": "illicitflows-transactions",
                                              "version": service["version"]}
        else:
            assert "detail" in answer.json()
    assert service["runtime"].reviews.verify().checked == 3  # the answered ones, logged


def test_the_review_ranks_accounts_with_reasons_and_networks(service) -> None:
    body = review(service)
    accounts = body["accounts"]
    assert len(accounts) == 50 and [a["rank"] for a in accounts] == list(range(1, 51))
    assert scores(accounts) == sorted(scores(accounts), reverse=True)
    flagged = [a for a in accounts if a["flagged"]]
    assert flagged, "the period's laundering accounts should be flagged"
    top = flagged[0]
    assert top["families"] and top["drivers"] and top["transfers"]
    start, end = service["from"].isoformat(), service["cut"].isoformat()
    for transfer in top["transfers"]:
        assert start <= transfer["timestamp"] < end
        assert f"{top['bank']}|{top['account']}" in (transfer["from"], transfer["to"])
    for network in body["networks"]:
        assert network["size"] >= 2 and network["accounts"]
        assert all(a["network"] == network["network"] for a in accounts
                   if f"{a['bank']}|{a['account']}" in network["accounts"])
    assert body["transfers_read"] == len(service["earlier"]) and body["skipped"] == []
    assert body["period"] == {"from": start, "to": end, "top": 50}


def test_nothing_stamped_at_or_after_the_periods_end_changes_the_review(service,
                                                                         api_records) -> None:
    before = review(service)
    later = service["later"].copy()  # the last hour, made louder: the future must not count
    later["amount_paid"] *= 50
    later["amount_received"] *= 50
    scored = service["client"].post("/transactions/score", headers=bearer(
        service["keys"]["scorer"]), json={"transactions": api_records(later)})
    assert scored.status_code == 200, scored.text
    after = review(service)
    assert {k: after[k] for k in RESULT_FIELDS} == {k: before[k] for k in RESULT_FIELDS}
    assert after["audit"]["result_sha256"] == before["audit"]["result_sha256"]
    assert after["review_id"] != before["review_id"]  # a second entry, the same result
    end = later["timestamp"].iloc[-1] + pd.Timedelta(minutes=1)
    extended = review(service, **period(service, to=end))  # the period including that hour
    assert extended["transfers_read"] == before["transfers_read"] + len(later)
    assert scores(extended["accounts"]) != scores(before["accounts"])


def test_each_review_is_chained_in_the_audit_log_and_tampering_is_named(service) -> None:
    body = review(service, role="auditor")
    result = {k: body[k] for k in RESULT_FIELDS}
    assert body["audit"]["result_sha256"] == sha256_hex(canonical_json(result))
    runtime = service["runtime"]
    entry = runtime.reviews.get(body["review_id"])
    assert (entry.role, entry.model_name, entry.model_version) == (
        "auditor", "illicitflows-transactions", service["version"])
    assert (entry.period_from, entry.period_to, entry.top) == (
        service["from"].isoformat(), service["cut"].isoformat(), 50)
    assert entry.key_id == runtime.keys.authenticate(service["keys"]["auditor"]).key_id
    assert json.loads(entry.result) == result and entry.accounts == 50
    assert entry.anchor_seq == runtime.audit.verify().checked  # after the scored decisions
    review(service, role="admin")

    runner, url = CliRunner(), runtime.audit.url
    intact = runner.invoke(cli, ["audit", "verify", "--url", url])
    said = " ".join(intact.output.split())  # the console wraps long lines
    assert intact.exit_code == 0 and "2 reviews verified" in said, intact.output
    log = ReviewLog(url)
    with log.engine.begin() as connection:  # an insider moves the period of the first review
        connection.exec_driver_sql("UPDATE audit_reviews SET period_to = '2030-01-01T00:00:00'"
                                   " WHERE seq = 1")
    changed = log.verify()
    assert not changed.ok and changed.first_bad_seq == 1 and changed.checked == 0
    assert body["review_id"] in changed.problem and "changed" in changed.problem
    broken = runner.invoke(cli, ["audit", "verify", "--url", url])
    assert broken.exit_code == 1
    said = "".join(broken.output.split())
    assert "atreview1:" in said and body["review_id"] in said
    with log.engine.begin() as connection:  # ... puts it back and deletes the last one instead
        connection.exec_driver_sql("UPDATE audit_reviews SET period_to = ? WHERE seq = 1",
                                   (entry.period_to,))
        connection.exec_driver_sql("DELETE FROM audit_reviews WHERE seq = 2")
    assert "deleted from the end" in log.verify().problem
    log.close()


def test_the_command_line_and_the_endpoint_rank_alike(service, tmp_path) -> None:
    body = review(service, **period(service, top=200))
    data = tmp_path / "period.parquet"  # the records the service holds, as a file
    service["earlier"].drop(columns=["is_laundering"]).to_parquet(data)
    out = tmp_path / "review.json"
    done = CliRunner().invoke(cli, [
        "review", "transactions", "--data", str(data), "--from", service["from"].isoformat(),
        "--to", service["cut"].isoformat(), "--top", "200", "--model", service["version"],
        "--tracking-uri", service["uri"], "--out", str(out)])
    assert done.exit_code == 0, done.output + repr(done.exception)
    offline = json.loads(out.read_text())
    assert len(offline) == len(body["accounts"]) == 200
    assert ranking(body["accounts"]) == ranking(offline)
    assert scores(body["accounts"]) == pytest.approx(scores(offline), abs=1e-9)  # JSON: 10
    assert [", ".join(a["families"]) for a in body["accounts"]] == [
        a["families"] for a in offline]


BAD_BODIES = [
    ({"to": "2022-09-10"}, "from"),
    ({"from": "2022-09-10", "to": "tomorrow"}, "to"),
    ({"from": "2022-09-10", "to": 20220911}, "to"),
    ({"from": "2022-09-10T12:00:00", "to": "2022-09-10T12:00:00"}, "to"),
    ({"from": "2022-09-10", "to": "2022-09-11", "top": 0}, "top"),
    ({"from": "2022-09-10", "to": "2022-09-11", "top": True}, "top"),
    ({"from": "2022-09-10", "to": "2022-09-11", "top": "5"}, "top"),
    ({"from": "2022-09-10", "to": "2022-09-11", "limit": 5}, "limit"),
    ({"from": "2022-02-30", "to": "2022-09-11"}, "from"),
    ({"from": "2022-09-10", "to": "9999-12-31T23:59:59-14:00"}, "to"),
    ({"from": "2021-01-01", "to": "2021-02-01"}, "from"),  # no stored transfers then
]


def test_bad_periods_and_parameters_answer_422_naming_the_field(service) -> None:
    for body, field in BAD_BODIES:
        answer = service["client"].post("/transactions/review", json=body,
                                        headers=bearer(service["keys"]["analyst"]))
        assert answer.status_code == 422, (body, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field], body
    assert service["runtime"].reviews.verify().checked == 0  # nothing logged


def test_a_period_beyond_the_services_limit_and_a_model_without_a_ranker_are_refused(
        service, tx_detector, tx_model) -> None:
    runtime = service["runtime"]
    runtime.settings.max_review_transfers = 100
    answer = service["client"].post("/transactions/review", json=period(service),
                                    headers=bearer(service["keys"]["analyst"]))
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "from"
    assert "illicitflows review transactions" in answer.json()["errors"][0]["reason"]
    runtime.settings.max_review_transfers = 500_000
    runtime.add_scorer(tx_detector, tx_model)  # trained without an account ranker
    answer = service["client"].post("/transactions/review", json=period(service),
                                    headers=bearer(service["keys"]["analyst"]))
    assert answer.status_code == 409 and "account ranker" in answer.json()["detail"]
