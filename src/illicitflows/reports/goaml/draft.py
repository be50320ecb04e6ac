"""A goAML STR draft from one or more decisions: the report header from the reporting-entity
file, one ``transaction`` per flagged transfer of each decision's suspected network (or the
declaration's payment, with its goods), ``report_indicators`` from the reasons' families and
a ``reason`` narrative from the reasons and the behaviour comparison. Codes come from a
replaceable mapping file; every document is validated against the shipped XSD before it is
returned.

A draft needs each decision's latest disposition to be ``confirmed``; ``allow_unconfirmed``
writes it anyway, marked UNCONFIRMED in its ``action`` and ``entity_reference``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import xmlschema
import yaml

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.models import StoredDecision
from illicitflows.audit.store import AuditLog
from illicitflows.reports.behaviour import (
    Comparison,
    compare,
    history_before,
    party_values,
    suspected_network,
)
from illicitflows.transactions.schema import ISO_CODE, USD_PER_UNIT

PACKAGE = files("illicitflows.reports.goaml")
MAX_TEXT = 4000


class GoamlError(ValueError):
    """A draft that cannot be written: names the decision and why (``status``: HTTP code)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class GoamlValidationError(GoamlError):
    """The document does not conform to the XSD: names the element and the rule."""


@dataclass(frozen=True, slots=True)
class GoamlConfig:
    """The reporting entity's placeholders and the FIU's lookup codes."""

    entity: Mapping[str, Any]
    mapping: Mapping[str, Any]

    @classmethod
    def load(cls, entity: Path | None = None, mapping: Path | None = None) -> GoamlConfig:
        """From the given files, else ``$ILLICITFLOWS_GOAML_ENTITY`` / ``_MAPPING``, else the
        packaged placeholders."""
        return cls(_yaml(entity or os.environ.get("ILLICITFLOWS_GOAML_ENTITY"), "entity.yaml"),
                   _yaml(mapping or os.environ.get("ILLICITFLOWS_GOAML_MAPPING"),
                         "mapping.yaml"))

    def code(self, table: str, key: str) -> str:
        codes = self.mapping.get(table, {})
        return str(codes.get(key, codes["default"]))


def _yaml(path: Path | str | None, packaged: str) -> dict[str, Any]:
    text = Path(path).read_text() if path else (PACKAGE / packaged).read_text()
    return yaml.safe_load(text)


@cache
def schema() -> xmlschema.XMLSchema:
    """The XSD of the elements the drafts use (shipped in the package)."""
    return xmlschema.XMLSchema((PACKAGE / "str.xsd").read_text())


def validate(document: bytes) -> None:
    """Raise :class:`GoamlValidationError` naming the first violation."""
    error = next(schema().iter_errors(document.decode("utf-8")), None)
    if error is not None:
        raise GoamlValidationError(f"goAML draft does not conform to the schema at "
                                   f"{error.path}: {error.reason}")


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _iso(value: Any) -> str:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def _iso_currency(name: str) -> str:
    return ISO_CODE.get(name, name)


def _rate(currency: str, local: str) -> float:
    """Local units per unit of ``currency`` (through USD)."""
    usd = {**USD_PER_UNIT, **{ISO_CODE[n]: r for n, r in USD_PER_UNIT.items()}}
    if currency not in usd or local not in usd:
        raise GoamlError(f"no exchange rate from {currency!r} to the local currency {local!r}")
    return usd[currency] / usd[local]


class DraftBuilder:
    """Builds one STR from decisions (their records, reasons, behaviour and networks)."""

    def __init__(self, audit: AuditLog, dispositions: DispositionLog, config: GoamlConfig):
        self.audit, self.dispositions, self.config = audit, dispositions, config
        self.local = str(config.entity["currency_code_local"])

    def build(self, decision_ids: Sequence[str], allow_unconfirmed: bool = False) -> bytes:
        """The validated XML document (UTF-8)."""
        if not decision_ids:
            raise GoamlError("a draft needs at least one decision")
        decisions = []
        for decision_id in dict.fromkeys(decision_ids):
            stored = self.audit.get(decision_id)
            if stored is None:
                raise GoamlError(f"no decision {decision_id!r}", 404)
            decisions.append(stored)
        latest = self.dispositions.latest(d.decision_id for d in decisions)
        unconfirmed = [d.decision_id for d in decisions
                       if d.decision_id not in latest
                       or latest[d.decision_id].status != "confirmed"]
        if unconfirmed and not allow_unconfirmed:
            raise GoamlError(f"decision(s) {', '.join(unconfirmed)} have no confirmed "
                             "disposition: confirm them first, or ask for an unconfirmed draft",
                             409)
        document = self._report(decisions, bool(unconfirmed))
        validate(document)
        return document

    def _report(self, decisions: list[StoredDecision], unconfirmed: bool) -> bytes:
        entity = self.config.entity
        report = ET.Element("report")
        _sub(report, "rentity_id", entity["rentity_id"])
        if entity.get("rentity_branch"):
            _sub(report, "rentity_branch", entity["rentity_branch"])
        _sub(report, "submission_code", entity.get("submission_code", "E"))
        _sub(report, "report_code", entity.get("report_code", "STR"))
        reference = "+".join(d.decision_id for d in decisions)[:200]
        _sub(report, "entity_reference", ("UNCONFIRMED " if unconfirmed else "") + reference)
        _sub(report, "submission_date", datetime.now(UTC).replace(tzinfo=None)
             .isoformat(timespec="seconds"))
        _sub(report, "currency_code_local", self.local)
        person = _sub(report, "reporting_person")
        for field in ("first_name", "last_name", "email", "occupation"):
            if entity["reporting_person"].get(field):
                _sub(person, field, entity["reporting_person"][field])
        if entity.get("location"):
            _sub(report, "location", entity["location"])
        narratives, families, seen = [], [], set()
        transactions: list[ET.Element] = []
        for stored in decisions:
            _, history = history_before(self.dispositions.engine, stored.detector,
                                        stored.seq, party_values(stored.detector,
                                                                 stored.record))
            comparison = compare(stored.detector, stored.record, history)
            narratives.append(_narrative(stored, comparison))
            families += [r["family"] for r in (stored.explanation or {}).get("reasons", [])]
            for element in self._transactions(stored, history):
                number = element.findtext("internal_ref_number")
                if number not in seen:
                    seen.add(number)
                    transactions.append(element)
        _sub(report, "reason", " ".join(narratives)[:MAX_TEXT])
        action = str(entity.get("action", "")).strip() or "Draft for analyst review."
        if unconfirmed:
            action = ("UNCONFIRMED DRAFT: no analyst has confirmed every alert of this report. "
                      + action)
        _sub(report, "action", action[:MAX_TEXT])
        report.extend(transactions)
        indicators = _sub(report, "report_indicators")
        codes = dict.fromkeys(self.config.code("indicators", f) for f in families) or {
            self.config.code("indicators", "default"): None}
        for code in codes:
            _sub(indicators, "indicator", code)
        ET.indent(report)
        return ET.tostring(report, encoding="utf-8", xml_declaration=True)

    def _transactions(self, stored: StoredDecision, history: list[Any]) -> list[ET.Element]:
        if stored.detector == "trade":
            return [self._declaration(stored)]
        edges = suspected_network(stored.record, stored.flagged, history, stored.decision_id)
        flagged = [e for e in edges if e.flagged and e.record is not None]
        if not flagged:  # the decision's own transfer, flagged or not
            return [self._transfer(stored.record, stored.decision_id, stored.score)]
        return [self._transfer(dict(e.record or {}), e.decision_id, None) for e in flagged]

    def _transfer(self, record: Mapping[str, Any], decision_id: str,
                  score: float | None) -> ET.Element:
        element = ET.Element("transaction")
        _sub(element, "transactionnumber", record.get("id") or decision_id)
        _sub(element, "internal_ref_number", decision_id)
        description = (f"{record.get('payment_format')} payment flagged by the transaction "
                       "monitoring model")
        if score is not None:
            description += f" (score {score:.3f})"
        _sub(element, "transaction_description", description)
        _sub(element, "date_transaction", _iso(record["timestamp"]))
        fmt = str(record.get("payment_format", ""))
        _sub(element, "transmode_code", self.config.code("transmode", fmt))
        paid = _iso_currency(str(record.get("payment_currency", "")))
        amount = float(record.get("amount_paid") or 0.0)
        _sub(element, "amount_local", f"{amount * _rate(paid, self.local):.2f}")
        received = _iso_currency(str(record.get("receiving_currency", "")))
        self._party(element, "from", fmt, paid, amount, record.get("from_bank"),
                    record.get("from_account"))
        self._party(element, "to", fmt, received, float(record.get("amount_received") or 0.0),
                    record.get("to_bank"), record.get("to_account"))
        return element

    def _party(self, transaction: ET.Element, side: str, fmt: str, currency: str,
               amount: float, bank: Any, account: Any) -> None:
        party = _sub(transaction, f"t_{side}")
        _sub(party, f"{side}_funds_code", self.config.code("funds", fmt))
        if currency != self.local:
            foreign = _sub(party, f"{side}_foreign_currency")
            _sub(foreign, "foreign_currency_code", currency)
            _sub(foreign, "foreign_amount", f"{amount:.2f}")
            _sub(foreign, "foreign_exchange_rate", f"{_rate(currency, self.local):.6g}")
        holder = _sub(party, f"{side}_account")
        _sub(holder, "institution_name", f"bank {bank}")
        _sub(holder, "institution_code", bank)
        _sub(holder, "account", account)
        _sub(holder, "currency_code", currency)
        _sub(party, f"{side}_country", self.config.entity.get("default_country", "XX"))

    def _declaration(self, stored: StoredDecision) -> ET.Element:
        """A declaration's payment: importer to seller, with the goods declared."""
        record = stored.record
        element = ET.Element("transaction")
        _sub(element, "transactionnumber", record.get("declaration_id") or stored.decision_id)
        _sub(element, "internal_ref_number", stored.decision_id)
        _sub(element, "transaction_description",
             f"payment for goods declared at customs office {record.get('office_id')} "
             f"(score {stored.score:.3f})")
        _sub(element, "date_transaction", _iso(record["date"]))
        _sub(element, "transmode_code", self.config.code("transmode", "trade"))
        currency = _iso_currency(str(record.get("currency", "")))
        value = float(record.get("declared_value") or 0.0)
        _sub(element, "amount_local", f"{value * _rate(currency, self.local):.2f}")
        origin = str(record.get("departure_country") or record.get("origin_country") or "")
        for side, who, country in (("from", record.get("importer_id"),
                                    self.config.entity.get("default_country", "XX")),
                                   ("to", record.get("seller_id"), origin or "XX")):
            party = _sub(element, f"t_{side}")
            _sub(party, f"{side}_funds_code", self.config.code("funds", "trade"))
            if currency != self.local:
                foreign = _sub(party, f"{side}_foreign_currency")
                _sub(foreign, "foreign_currency_code", currency)
                _sub(foreign, "foreign_amount", f"{value:.2f}")
                _sub(foreign, "foreign_exchange_rate", f"{_rate(currency, self.local):.6g}")
            _sub(_sub(party, f"{side}_entity"), "name",
                 f"{'importer' if side == 'from' else 'seller'} {who}")
            _sub(party, f"{side}_country", country)
        goods = _sub(element, "goods_services")
        item = _sub(goods, "item")
        _sub(item, "item_type", self.config.mapping.get("goods_item_type", "GOODS"))
        _sub(item, "description",
             f"HS {record.get('hs6')} from {record.get('origin_country')}, "
             f"{record.get('net_mass_kg')} kg, quantity {record.get('quantity')}")
        _sub(item, "estimated_value", f"{value:.2f}")
        _sub(item, "currency_code", currency)
        return element


def _narrative(stored: StoredDecision, comparison: Comparison) -> str:
    """The draft's reason for one decision: what was flagged, why, against what."""
    reasons = (stored.explanation or {}).get("reasons", [])
    why = "; ".join(f"{r['family']}: {r['sentence']}" for r in reasons) or "no reasons logged"
    usual = "; ".join(f"{aspect}: {this} against {usual}"
                      for aspect, this, usual in comparison.rows[:3])
    notes = "; ".join(comparison.notes)
    text = (f"The {stored.detector} model {stored.model_name} version {stored.model_version} "
            f"scored record {stored.record.get('id') or stored.record.get('declaration_id')} "
            f"(decision {stored.decision_id}) {stored.score:.3f} against a threshold of "
            f"{stored.threshold:.3f}. Red flags: {why}. Compared with the {comparison.party}'s "
            f"own activity over {comparison.horizon}: {usual}.")
    return text + (f" Also: {notes}." if notes else "")
