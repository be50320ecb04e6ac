"""The standalone HTML report of one decision: one file, no external assets, printable."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from illicitflows.audit.dispositions import DispositionLog
from illicitflows.audit.store import AuditLog
from illicitflows.reports.behaviour import (
    compare,
    history_before,
    party_values,
    suspected_network,
)
from illicitflows.reports.render import CSS, environment
from illicitflows.reports.svg import network_svg, waterfall_svg


class DecisionNotFoundError(LookupError):
    """No decision with this id in the audit log."""


def model_report_path(name: str, version: str, base: str = "/v1") -> str:
    """Where the service serves a model version's report."""
    return f"{base}/models/{name}/{version}/report"


def decision_context(audit: AuditLog, dispositions: DispositionLog, engine: Any,
                     decision_id: str, base: str = "/v1") -> dict[str, Any]:
    """Everything the decision report shows, as data (also what the review page renders)."""
    stored = audit.get(decision_id)
    if stored is None:
        raise DecisionNotFoundError(f"no decision {decision_id!r}")
    d = asdict(stored)
    window, history = history_before(engine, stored.detector, stored.seq,
                                     party_values(stored.detector, stored.record))
    explanation = stored.explanation or {}
    edges = (suspected_network(stored.record, stored.flagged, history,
                               stored.decision_id)
             if stored.detector == "transactions" else [])
    focus = [f"{stored.record.get(f'{side}_bank', '')}/{stored.record.get(f'{side}_account', '')}"
             for side in ("from", "to")]
    contributions = explanation.get("contributions") or {}
    record_id = stored.record.get("id") or stored.record.get("declaration_id") or ""
    return {
        "d": d, "record_label": record_id,
        "reasons": explanation.get("reasons") or [],
        "waterfall": waterfall_svg(explanation.get("base_value", 0.0), contributions, {})
        if contributions else "",
        "behaviour": compare(stored.detector, stored.record, history),
        "history_size": window,
        "edges": edges, "network": network_svg(edges, focus) if edges else "",
        "dispositions": [x.as_dict() for x in dispositions.history(decision_id)],
        "model_report": model_report_path(stored.model_name, stored.model_version, base),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def render_decision_report(context: dict[str, Any]) -> str:
    """The report's HTML (styles inline)."""
    return environment().get_template("decision.html.j2").render(css=CSS, **context)
