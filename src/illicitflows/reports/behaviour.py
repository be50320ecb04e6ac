"""How a record compares with its account's (or importer's) own recent behaviour, and the
suspected network around a flagged transfer, read from the history the decision saw: the
decisions of its detector logged before it (the service's history state is rebuilt from
exactly these)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from illicitflows.audit.schema import decisions, requests
from illicitflows.reports.svg import Edge

#: How far back the comparison looks, in logged decisions of the detector and in record time.
HISTORY_DECISIONS = 5000
HORIZON = {"transactions": timedelta(days=30), "trade": timedelta(days=365)}
MAX_NETWORK_EDGES = 40


@dataclass(frozen=True, slots=True)
class Past:
    """A record logged before the decision, with its flag."""

    record: dict[str, Any]
    flagged: bool
    decision_id: str


@dataclass
class Comparison:
    """Rows of (aspect, this record, the party's usual behaviour) and a summary line."""

    party: str
    horizon: str
    seen: int
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def party_values(detector: str, record: dict[str, Any]) -> list[str]:
    """The identifiers whose earlier records the comparison reads: the transfer's accounts,
    or the declaration's importer."""
    fields = ("from_account", "to_account") if detector == "transactions" else ("importer_id",)
    return [str(record[name]) for name in fields if record.get(name) not in (None, "")]


def history_before(engine: Engine, detector: str, seq: int, parties: list[str],
                   limit: int = HISTORY_DECISIONS) -> tuple[int, list[Past]]:
    """Among the ``limit`` decisions of ``detector`` logged before position ``seq``: how many
    there are, and, oldest first, the flagged ones and those whose record names one of
    ``parties`` (found by the database in the stored JSON, then checked field by field by the
    callers): only those are read back and parsed."""
    window = [requests.c.detector == detector, decisions.c.seq < seq,
              decisions.c.seq >= seq - limit]
    naming = [decisions.c.record.contains(f'"{party}"', autoescape=True) for party in parties]
    joined = decisions.join(requests, decisions.c.request_seq == requests.c.first_seq)
    query = (sa.select(decisions.c.decision_id, decisions.c.record, decisions.c.flagged)
             .select_from(joined)
             .where(*window, sa.or_(decisions.c.flagged.is_(True), *naming))
             .order_by(decisions.c.seq))
    with engine.connect() as connection:
        size = connection.scalar(sa.select(sa.func.count()).select_from(joined).where(*window))
        return size or 0, [Past(json.loads(row.record), bool(row.flagged), row.decision_id)
                           for row in connection.execute(query)]


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _within(history: list[Past], record: dict[str, Any], time_field: str,
            horizon: timedelta) -> list[Past]:
    now = _moment(record.get(time_field))
    if now is None:
        return history
    return [p for p in history
            if (t := _moment(p.record.get(time_field))) is not None and now - horizon <= t <= now]


def _usual(counter: Counter[str], top: int = 3) -> str:
    total = sum(counter.values())
    if not total:
        return "none seen"
    return ", ".join(f"{name} ({count / total:.0%})" for name, count in counter.most_common(top))


def _times(value: float, usual: float) -> str:
    if usual <= 0:
        return ""
    ratio = value / usual
    return f" ({ratio:.1f}x the usual)" if ratio >= 1 else f" ({ratio:.2f}x the usual)"


def account(record: dict[str, Any], side: str) -> str:
    return f"{record.get(f'{side}_bank', '')}/{record.get(f'{side}_account', '')}"


def compare_transaction(record: dict[str, Any], history: list[Past]) -> Comparison:
    """The sending account's payments and receipts within the horizon before this one."""
    horizon = HORIZON["transactions"]
    recent = _within(history, record, "timestamp", horizon)
    sender = account(record, "from")
    sent = [p.record for p in recent if account(p.record, "from") == sender]
    received = [p.record for p in recent if account(p.record, "to") == sender]
    result = Comparison(party=f"sending account {sender}", horizon=f"{horizon.days} days",
                        seen=len(sent) + len(received))
    currency = record.get("payment_currency", "")
    amount = float(record.get("amount_paid") or 0.0)
    same = [float(r.get("amount_paid") or 0.0) for r in sent
            if r.get("payment_currency") == currency]
    if same:
        typical = statistics.median(same)
        result.rows.append(("amount paid", f"{amount:,.2f} {currency}",
                            f"median {typical:,.2f} {currency}, max {max(same):,.2f} over "
                            f"{len(same)} payment(s){_times(amount, typical)}"))
    else:
        result.rows.append(("amount paid", f"{amount:,.2f} {currency}",
                            f"no earlier payment in {currency}"))
    receivers = Counter(account(r, "to") for r in sent)
    receiver = account(record, "to")
    result.rows.append(("receiver", receiver, _usual(receivers)))
    if receiver not in receivers:
        result.notes.append(f"first payment from this account to {receiver}")
    formats = Counter(str(r.get("payment_format", "")) for r in sent)
    result.rows.append(("payment format", str(record.get("payment_format", "")),
                        _usual(formats)))
    if sent and record.get("payment_format") not in formats:
        result.notes.append(f"first {record.get('payment_format')} payment of this account")
    currencies = Counter(str(r.get("payment_currency", "")) for r in sent)
    result.rows.append(("currency", str(currency), _usual(currencies)))
    total_in = sum(float(r.get("amount_received") or 0.0) for r in received)
    total_out = sum(float(r.get("amount_paid") or 0.0) for r in sent)
    result.rows.append(("activity", "this payment",
                        f"{len(sent)} payment(s) out ({total_out:,.2f}), {len(received)} in "
                        f"({total_in:,.2f}) from {len({account(r, 'from') for r in received})} "
                        f"sender(s)"))
    hours = Counter(f"{t.hour:02d}h" for r in sent if (t := _moment(r.get("timestamp"))))
    moment = _moment(record.get("timestamp"))
    if moment is not None:
        result.rows.append(("hour", f"{moment.hour:02d}h", _usual(hours)))
    if not sent and not received:
        result.notes.append("no earlier activity of this account in the history")
    return result


def compare_declaration(record: dict[str, Any], history: list[Past]) -> Comparison:
    """The importer's earlier declarations within the horizon."""
    horizon = HORIZON["trade"]
    importer = str(record.get("importer_id", ""))
    earlier = [p.record for p in _within(history, record, "date", horizon)
               if str(p.record.get("importer_id", "")) == importer]
    result = Comparison(party=f"importer {importer}", horizon=f"{horizon.days} days",
                        seen=len(earlier))
    hs6 = str(record.get("hs6", ""))

    def unit_value(r: dict[str, Any]) -> float | None:
        mass = float(r.get("net_mass_kg") or 0.0)
        return float(r.get("declared_value") or 0.0) / mass if mass > 0 else None

    value = unit_value(record)
    same = [v for r in earlier if str(r.get("hs6")) == hs6 and (v := unit_value(r)) is not None]
    currency = record.get("currency", "")
    shown = "unknown (no mass)" if value is None else f"{value:,.2f} {currency}/kg"
    if same and value is not None:
        typical = statistics.median(same)
        result.rows.append((f"unit value, HS {hs6}", shown,
                            f"median {typical:,.2f} {currency}/kg over {len(same)} "
                            f"declaration(s){_times(value, typical)}"))
    else:
        result.rows.append((f"unit value, HS {hs6}", shown, "no earlier declaration of it"))
        result.notes.append(f"first declaration of HS {hs6} by this importer")
    chapters = Counter(str(r.get("hs6", ""))[:2] for r in earlier)
    result.rows.append(("HS chapter", hs6[:2], _usual(chapters)))
    sellers = Counter(str(r.get("seller_id", "")) for r in earlier)
    seller = str(record.get("seller_id", ""))
    result.rows.append(("seller", seller, _usual(sellers)))
    if seller not in sellers:
        result.notes.append(f"first declaration with seller {seller}")
    origins = Counter(str(r.get("origin_country", "")) for r in earlier)
    result.rows.append(("origin", str(record.get("origin_country", "")), _usual(origins)))
    declarants = Counter(str(r.get("declarant_id", "")) for r in earlier)
    result.rows.append(("declarant", str(record.get("declarant_id", "")), _usual(declarants)))
    if not earlier:
        result.notes.append("no earlier declaration of this importer in the history")
    return result


def compare(detector: str, record: dict[str, Any], history: list[Past]) -> Comparison:
    return (compare_transaction(record, history) if detector == "transactions"
            else compare_declaration(record, history))


def _edge(record: dict[str, Any], flagged: bool, decision_id: str,
          current: bool = False) -> Edge:
    return Edge(account(record, "from"), account(record, "to"),
                float(record.get("amount_paid") or 0.0), str(record.get("payment_currency", "")),
                str(record.get("timestamp", "")), flagged, current, decision_id, record)


def suspected_network(record: dict[str, Any], flagged: bool, history: list[Past],
                      decision_id: str = "") -> list[Edge]:
    """The flagged transfers within the horizon connected to this one's accounts (through
    flagged transfers), and this transfer; empty when nothing flagged touches it."""
    recent = [p for p in _within(history, record, "timestamp", HORIZON["transactions"])
              if p.flagged]
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for past in recent:
        parent[find(account(past.record, "from"))] = find(account(past.record, "to"))
    root = find(account(record, "from"))
    if flagged:
        parent[root] = find(account(record, "to"))
        root = find(account(record, "to"))
    group = [_edge(p.record, True, p.decision_id) for p in recent
             if find(account(p.record, "from")) == root]
    if not group:
        return []
    return [*group[-(MAX_NETWORK_EDGES - 1):],
            _edge(record, flagged, decision_id, current=True)]
