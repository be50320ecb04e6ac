"""The feedback loop end to end: score, disposition a few alerts, export the labels, retrain with
them; the new run's data fingerprint and label counts show the analysts' labels."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from illicitflows.cli import app as cli
from illicitflows.tracking.runs import fingerprint
from illicitflows.transactions.io import load_transactions, write_ibm_csv

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def fast_pipeline(path: Path) -> Path:
    pipeline = yaml.safe_load((ROOT / "pipelines" / "transactions.yaml").read_text())
    pipeline["model"]["num_boost_round"] = 40
    pipeline["model"]["early_stopping_rounds"] = 10
    pipeline["shap_sample"] = 100
    path.write_text(yaml.safe_dump(pipeline))
    return path


def test_dispositions_become_training_labels(workbench, wb_transactions, tmp_path) -> None:
    results = workbench.transactions["results"]
    flagged = [i for i, r in enumerate(results) if r["flagged"]]
    assert len(flagged) >= 4, "the test data should flag a few records"
    statuses = ["confirmed", "dismissed", "dismissed", "escalated"]
    for i, status in zip(flagged[:4], statuses, strict=True):
        answer = workbench.client.post(f"/decisions/{results[i]['decision_id']}/disposition",
                                       json={"status": status, "note": "reviewed"},
                                       headers=workbench.headers("analyst"))
        assert answer.status_code == 200

    runner = CliRunner()
    labels = tmp_path / "labels.csv"
    exported = runner.invoke(cli, ["export", "labels", "--detector", "transactions", "--out",
                                   str(labels), "--url", workbench.runtime.audit.url])
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    given = load_transactions(labels, "ibm", strict=True).frame
    assert given["is_laundering"].tolist() == [1, 0, 0]  # escalated gives no label yet
    assert "3 labelled transactions record(s)" in exported.output
    trade = tmp_path / "trade-labels.csv"
    assert runner.invoke(cli, ["export", "labels", "--detector", "trade", "--out", str(trade),
                               "--url", workbench.runtime.audit.url]).exit_code == 0

    # the training data lacks the confirmed record: the analysts' label adds it
    scored = workbench.frame.index
    data = tmp_path / "transactions.csv"
    write_ibm_csv(wb_transactions.drop(index=scored[flagged[0]]), data)
    truth = wb_transactions["is_laundering"].to_numpy()
    changed = sum(truth[scored[i]] != 0 for i in flagged[1:3])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    metrics = tmp_path / "metrics.json"
    trained = runner.invoke(cli, [
        "train", "transactions", "--data", str(data), "--labels", str(labels), "--config",
        str(fast_pipeline(tmp_path / "fast.yaml")), "--tracking-uri", uri,
        "--split-fractions", "0.6,0.2,0.2", "--metrics-out", str(metrics)])
    assert trained.exit_code == 0, trained.output + repr(trained.exception)
    document = json.loads(metrics.read_text())
    assert document["analyst_labels"] == {"file_rows": 3, "overridden": 2, "changed": changed,
                                          "added": 1}
    assert sum(document["rows"].values()) == len(wb_transactions)  # one dropped, one added
    assert "analysts' labels: 2 overridden" in trained.output

    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(document["model"]["run_id"])
    assert run.data.tags["data_fingerprint"] == fingerprint([data, labels])
    assert run.data.tags["data_fingerprint"] != fingerprint([data])
    assert run.data.metrics["analyst_labels_added"] == 1
    assert run.data.metrics["analyst_labels_overridden"] == 2

    model = document["model"]
    report = workbench.client.get(f"/models/{model['name']}/{model['version']}/report",
                                  headers=workbench.headers("auditor"))
    assert report.status_code == 200, report.text
    html = report.text
    assert document["model"]["run_id"] in html and fingerprint([data, labels]) in html
    assert 'id="pr-curve"' in html and "mean |SHAP|" in html and "structuring" in html
    assert "1 added" in html
    assert workbench.client.get("/models/illicitflows-transactions/99/report",
                                headers=workbench.headers("auditor")).status_code == 404
    assert workbench.client.get(f"/models/{model['name']}/{model['version']}/report",
                                headers=workbench.headers("scorer")).status_code == 403

    committed = (ROOT / "models" / "transactions.md").read_bytes()
    card = tmp_path / "transactions.md"  # the committed card, its block filled from this run
    card.write_bytes(committed)
    numbers = tmp_path / "numbers.md"
    for target in (["--out", str(numbers)], ["--update", str(card)]):
        written = runner.invoke(cli, ["report", "model-card", "transactions", "--version",
                                      model["version"], *target, "--tracking-uri", uri])
        assert written.exit_code == 0, written.output
    for text in (numbers.read_text(), card.read_text()):
        assert f"| pr_auc | {document['test']['pr_auc']:.4f} |" in text
        assert f"| f1 | {document['test']['f1']:.4f} |" in text
        assert f"/v1/models/{model['name']}/{model['version']}/report" in text
        assert fingerprint([data, labels]) in text
    end = "<!-- registry:end -->"
    assert card.read_text().split(end)[1] == committed.decode().split(end)[1]
