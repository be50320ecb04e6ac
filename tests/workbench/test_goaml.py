"""goAML STR drafts: a confirmed disposition is required (or the draft is marked unconfirmed),
every export validates against the shipped XSD and an invalid document fails it; trade
decisions carry their goods; lookup codes come from a replaceable mapping file."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from illicitflows.cli import app as cli
from illicitflows.reports.goaml.draft import PACKAGE, GoamlValidationError, validate


def confirm(workbench, decision_id: str) -> None:
    answer = workbench.client.post(f"/decisions/{decision_id}/disposition",
                                   json={"status": "confirmed", "note": "filed"},
                                   headers=workbench.headers("analyst"))
    assert answer.status_code == 200


def test_a_confirmed_transfer_gives_a_valid_str_draft(workbench) -> None:
    decision = workbench.flagged()[0]
    path = f"/decisions/{decision['decision_id']}/goaml"
    refused = workbench.client.get(path, headers=workbench.headers("analyst"))
    assert refused.status_code == 409 and "confirmed disposition" in refused.json()["detail"]
    assert workbench.client.get(path, headers=workbench.headers("auditor")).status_code == 403
    draft = workbench.client.get(path, params={"allow_unconfirmed": True},
                                 headers=workbench.headers("analyst"))
    assert draft.status_code == 200
    assert ET.fromstring(draft.content).findtext("action").startswith("UNCONFIRMED DRAFT")

    confirm(workbench, decision["decision_id"])
    answer = workbench.client.get(path, headers=workbench.headers("admin"))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/xml"
    validate(answer.content)
    report = ET.fromstring(answer.content)
    assert [child.tag for child in report][:4] == ["rentity_id", "rentity_branch",
                                                   "submission_code", "report_code"]
    assert report.findtext("report_code") == "STR"
    assert report.findtext("entity_reference") == decision["decision_id"]
    assert "UNCONFIRMED" not in report.findtext("action")
    transactions = report.findall("transaction")
    assert transactions and decision["decision_id"] in [
        t.findtext("internal_ref_number") for t in transactions]
    mapping = yaml.safe_load((PACKAGE / "mapping.yaml").read_text())
    codes = set(mapping["transmode"].values())
    for transaction in transactions:
        assert transaction.findtext("transmode_code") in codes
        assert transaction.find("t_from/from_account/account").text
        assert transaction.find("t_to/to_account/account").text
    families = {r["family"] for r in decision["reasons"]}
    assert {i.text for i in report.iter("indicator")} == {
        mapping["indicators"].get(f, mapping["indicators"]["default"]) for f in families}
    assert "Red flags:" in report.findtext("reason") and "own activity" in report.findtext(
        "reason")


def test_trade_drafts_carry_goods_and_the_mapping_is_replaceable(workbench, tmp_path) -> None:
    declaration = workbench.flagged("trade")[0] if workbench.flagged("trade") else \
        workbench.trade["results"][0]
    confirm(workbench, declaration["decision_id"])
    mapping = yaml.safe_load((PACKAGE / "mapping.yaml").read_text())
    mapping["transmode"]["trade"] = "X9"
    replaced = tmp_path / "mapping.yaml"
    replaced.write_text(yaml.safe_dump(mapping))
    out = tmp_path / "str.xml"
    result = CliRunner().invoke(cli, ["export", "goaml", "--decision",
                                      declaration["decision_id"], "--out", str(out),
                                      "--mapping", str(replaced),
                                      "--url", workbench.runtime.audit.url])
    assert result.exit_code == 0, result.output
    report = ET.parse(out).getroot()
    transaction = report.find("transaction")
    assert transaction.findtext("transmode_code") == "X9"
    assert transaction.find("goods_services/item/description").text.startswith("HS ")
    assert transaction.find("t_from/from_entity/name").text.startswith("importer ")
    unconfirmed = workbench.flagged()[1]["decision_id"]
    refused = CliRunner().invoke(cli, ["export", "goaml", "--decision", unconfirmed, "--out",
                                       str(tmp_path / "no.xml"),
                                       "--url", workbench.runtime.audit.url])
    assert refused.exit_code == 1
    assert "no confirmed disposition" in " ".join(refused.output.split())
    assert not (tmp_path / "no.xml").exists()


def test_an_invalid_document_fails_the_schema(workbench) -> None:
    decision_id = workbench.flagged()[0]["decision_id"]
    confirm(workbench, decision_id)
    good = workbench.client.get(f"/decisions/{decision_id}/goaml",
                                headers=workbench.headers("analyst")).content
    validate(good)
    report = ET.fromstring(good)
    transaction = report.find("transaction")
    transaction.remove(transaction.find("transmode_code"))
    with pytest.raises(GoamlValidationError, match="transaction"):
        validate(ET.tostring(report))
    report = ET.fromstring(good)
    report.find("transaction/amount_local").text = "-5"
    with pytest.raises(GoamlValidationError, match="amount_local"):
        validate(ET.tostring(report))
    report = ET.fromstring(good)
    report.find("currency_code_local").text = "dollars"
    with pytest.raises(GoamlValidationError, match="currency_code_local"):
        validate(ET.tostring(report))
