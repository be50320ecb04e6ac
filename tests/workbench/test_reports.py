"""The decision report: standalone HTML with the record, score, reasons, waterfall, behaviour
comparison, network, dispositions, model link and chain position; API and command line."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from illicitflows.cli import app as cli


def no_external_assets(html: str) -> bool:
    """No script, style sheet, image or font fetched from elsewhere (links to follow are
    fine)."""
    return not re.search(r"""src=["'](https?:)?//|<link|@import|url\(""", html)


def test_the_decision_report_shows_why_and_against_what(workbench) -> None:
    flagged = workbench.flagged()[0]
    decision_id = flagged["decision_id"]
    workbench.client.post(f"/decisions/{decision_id}/disposition",
                          json={"status": "escalated", "note": "needs the bank's KYC file"},
                          headers=workbench.headers("analyst"))
    answer = workbench.client.get(f"/decisions/{decision_id}/report",
                                  headers=workbench.headers("auditor"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    stored = workbench.client.get(f"/decisions/{decision_id}",
                                  headers=workbench.headers("auditor")).json()
    assert no_external_assets(html)
    assert "FLAGGED" in html and f"{stored['threshold']:.4f}" in html
    assert '<svg' in html and 'class="waterfall"' in html and html.count('class="step"') >= 5
    for reason in stored["explanation"]["reasons"]:
        assert reason["family"] in html
    assert "sending account" in html and "amount paid" in html and "receiver" in html
    assert stored["row_hash"] in html and f'<td id="position">{stored["seq"]}</td>' in html
    assert "needs the bank&#39;s KYC file" in html
    assert (f'href="/v1/models/{stored["model_name"]}/{stored["model_version"]}/report"'
            in html)
    assert stored["record"]["from_account"] in html


def test_network_and_trade_comparison(workbench) -> None:
    with_network = None
    for result in workbench.flagged():
        html = workbench.client.get(f"/decisions/{result['decision_id']}/report",
                                    headers=workbench.headers("analyst")).text
        if 'class="network"' in html:
            with_network = html
            break
    assert with_network is not None, "some flagged transfer should belong to a network"
    assert 'class="edge flagged"' in with_network and "Suspected network" in with_network
    trade = workbench.trade["results"][-1]["decision_id"]
    html = workbench.client.get(f"/decisions/{trade}/report",
                                headers=workbench.headers("admin")).text
    assert "importer" in html and "unit value, HS" in html and "seller" in html


def test_report_access_and_command_line(workbench, tmp_path) -> None:
    decision_id = workbench.flagged()[0]["decision_id"]
    path = f"/decisions/{decision_id}/report"
    assert workbench.client.get(path, headers=workbench.headers("scorer")).status_code == 403
    assert workbench.client.get(path).status_code == 401
    assert workbench.client.get("/decisions/nope/report",
                                headers=workbench.headers("auditor")).status_code == 404
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "decision", decision_id, "--out", str(out),
                                      "--url", workbench.runtime.audit.url])
    assert result.exit_code == 0, result.output
    assert decision_id in out.read_text() and no_external_assets(out.read_text())
    missing = CliRunner().invoke(cli, ["report", "decision", "nope", "--out", str(out),
                                       "--url", workbench.runtime.audit.url])
    assert missing.exit_code == 1 and "no decision" in missing.output
