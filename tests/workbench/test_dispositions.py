"""Dispositions: who may record them, append-only history, the list filter, and the audit
chain naming a changed or deleted disposition."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.review import QueueFilter, queue_page
from illicitflows.cli import app as cli


def test_analysts_and_admins_record_dispositions_auditors_and_scorers_cannot(workbench) -> None:
    decision_id = workbench.flagged()[0]["decision_id"]
    path = f"/decisions/{decision_id}/disposition"
    body = {"status": "confirmed", "note": "fan-in from mule accounts"}
    for role, status in (("auditor", 403), ("scorer", 403)):
        assert workbench.client.post(path, json=body, headers=workbench.headers(role)
                                     ).status_code == status
    assert workbench.client.post(path, json=body).status_code == 401
    first = workbench.client.post(path, json=body, headers=workbench.headers("analyst"))
    assert first.status_code == 200, first.text
    second = workbench.client.post(path, json={"status": "escalated", "note": " to FIU "},
                                   headers=workbench.headers("admin"))
    assert second.status_code == 200
    got = workbench.client.get(f"/decisions/{decision_id}",
                               headers=workbench.headers("auditor")).json()
    history = got["dispositions"]
    assert [(d["status"], d["note"], d["role"]) for d in history] == [
        ("confirmed", "fan-in from mule accounts", "analyst"), ("escalated", "to FIU", "admin")]
    assert history[0]["decision_hash"] == got["row_hash"]
    assert history[1]["prev_hash"] == history[0]["row_hash"]


def test_bad_dispositions_are_named(workbench) -> None:
    decision_id = workbench.flagged()[0]["decision_id"]
    headers = workbench.headers("analyst")
    cases = [({"status": "maybe"}, 422, "status"), ({"status": "dismissed", "note": 3}, 422,
                                                    "note"),
             ({"status": "dismissed", "note": "x" * 5000}, 422, "note")]
    for body, status, field in cases:
        answer = workbench.client.post(f"/decisions/{decision_id}/disposition", json=body,
                                       headers=headers)
        assert answer.status_code == status and field in answer.json()["detail"], answer.text
    missing = workbench.client.post("/decisions/0190b1d2-0000-7000-8000-000000000000/"
                                    "disposition", json={"status": "confirmed"},
                                    headers=headers)
    assert missing.status_code == 404
    not_json = workbench.client.post(f"/decisions/{decision_id}/disposition", content="{",
                                     headers=headers)
    assert not_json.status_code == 422


def test_the_list_filters_on_the_latest_disposition(workbench) -> None:
    flagged = [r["decision_id"] for r in workbench.flagged()]
    assert len(flagged) >= 3, "the test data should flag a few records"
    headers = workbench.headers("analyst")
    for decision_id, status in zip(flagged[:3], ("confirmed", "dismissed", "confirmed"),
                                   strict=True):
        workbench.client.post(f"/decisions/{decision_id}/disposition",
                              json={"status": status}, headers=headers)
    workbench.client.post(f"/decisions/{flagged[2]}/disposition",
                          json={"status": "dismissed", "note": "second look"}, headers=headers)

    def listed(status: str) -> list[str]:
        page = workbench.client.get("/decisions", params={"disposition": status,
                                                          "page_size": 1000},
                                    headers=headers).json()
        assert page["total"] == len(page["items"])
        return [item["decision_id"] for item in page["items"]]

    assert listed("confirmed") == [flagged[0]]
    assert listed("dismissed") == [flagged[1], flagged[2]]
    undecided = listed("none")
    assert not set(undecided) & set(flagged[:3])
    total = workbench.client.get("/decisions", params={"page_size": 1},
                                 headers=headers).json()["total"]
    assert len(undecided) == total - 3
    bad = workbench.client.get("/decisions", params={"disposition": "maybe"}, headers=headers)
    assert bad.status_code == 422 and "disposition" in bad.json()["detail"]


def test_audit_verify_names_a_changed_or_deleted_disposition(workbench, tmp_path) -> None:
    flagged = [r["decision_id"] for r in workbench.flagged()]
    for decision_id in flagged[:3]:
        workbench.client.post(f"/decisions/{decision_id}/disposition",
                              json={"status": "confirmed", "note": "checked"},
                              headers=workbench.headers("analyst"))
    url = workbench.runtime.audit.url
    runner = CliRunner()
    intact = runner.invoke(cli, ["audit", "verify", "--url", url])
    assert intact.exit_code == 0 and "3 dispositions verified" in intact.output, intact.output
    log = DispositionLog(url)
    second = log.history(flagged[1])[0]
    with log.engine.begin() as connection:  # an insider turns a confirmation into a dismissal
        connection.exec_driver_sql("UPDATE audit_dispositions SET status = 'dismissed' "
                                   "WHERE seq = ?", (second.seq,))
    changed = log.verify()
    assert not changed.ok and changed.first_bad_seq == second.seq
    assert changed.first_bad_decision_id == flagged[1] and "changed" in changed.problem
    broken = runner.invoke(cli, ["audit", "verify", "--url", url])
    assert broken.exit_code == 1 and second.disposition_id in broken.output.replace("\n", "")
    with log.engine.begin() as connection:  # ... then deletes it instead
        connection.exec_driver_sql("DELETE FROM audit_dispositions WHERE seq = ?",
                                   (second.seq,))
    deleted = log.verify()
    assert not deleted.ok and deleted.first_bad_seq == second.seq + 1
    assert "gap" in deleted.problem
    with log.engine.begin() as connection:  # ... or the last one
        connection.exec_driver_sql("DELETE FROM audit_dispositions WHERE seq > ?",
                                   (second.seq - 1,))
    tail = log.verify()
    assert not tail.ok and "deleted from the end" in tail.problem
    log.close()


def test_the_queue_pages_newest_first_with_counts(workbench) -> None:
    engine = workbench.runtime.dispositions.engine
    flagged = workbench.flagged() + workbench.flagged("trade")
    workbench.client.post(f"/decisions/{flagged[0]['decision_id']}/disposition",
                          json={"status": "dismissed"}, headers=workbench.headers("analyst"))
    pages = [queue_page(engine, QueueFilter(), page, page_size=3) for page in (1, 2)]
    seqs = [item["seq"] for page in pages for item in page.items]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == min(
        6, len(flagged))
    assert pages[0].total == len(flagged)
    assert pages[0].counts == {"none": len(flagged) - 1, "confirmed": 0, "dismissed": 1,
                               "escalated": 0}
    trade = queue_page(engine, QueueFilter(detector="trade", min_score=0.0, max_score=1.0))
    assert trade.total == len(workbench.flagged("trade"))
    assert all(item["detector"] == "trade" for item in trade.items)
    nothing = queue_page(engine, QueueFilter(from_time="2100-01-01"))
    assert nothing.total == 0 and nothing.items == []
    for bad in ({"disposition": "maybe"}, {"from_time": "yesterday"}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            QueueFilter(**bad)
