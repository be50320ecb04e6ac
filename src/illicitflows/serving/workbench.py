"""The analysts' and auditors' workbench JSON API: dispositions, decision and model reports,
goAML drafts (the review page that works on it is :mod:`illicitflows.serving.ui`).

Callers sign in with an API key: ``Authorization: Bearer <key>``, or the review page's session
cookie, which holds the key itself (the key store stays the one place that knows who may do
what).
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from illicitflows.access.keys import Principal, allowed
from illicitflows.audit.dispositions import DispositionError
from illicitflows.reports.decision import (
    DecisionNotFoundError,
    decision_context,
    render_decision_report,
)
from illicitflows.reports.goaml.draft import DraftBuilder, GoamlConfig, GoamlError
from illicitflows.reports.model import load_model_report

router = APIRouter()
#: The review page's session cookie (holds the API key; HTTP-only, same-site strict).
SESSION_COOKIE = "illicitflows_key"


def principal_of(request: Request, permission: str) -> Principal:
    """The caller's key (Bearer header, else the review page's cookie); 401 without a valid
    one, 403 when its role lacks ``permission``."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'")
    principal = request.app.state.runtime.keys.authenticate(secret.strip())
    if principal is None:
        raise HTTPException(401, "invalid or revoked API key")
    if not allowed(principal.role, permission):
        raise HTTPException(403, f"role {principal.role!r} may not "
                                 f"{permission.replace('_', ' ')}")
    return principal


@router.post("/decisions/{decision_id}/disposition")
async def record_disposition(request: Request, decision_id: str) -> dict[str, Any]:
    """Record what a decision turned out to be: ``{"status": "confirmed" | "dismissed" |
    "escalated", "note": "..."}`` (analysts, admins). Append-only and hash-chained into the
    decision log; a 200 means it is committed."""
    principal = principal_of(request, "record_dispositions")
    try:
        body = pydantic_core.from_json(await request.body())
    except ValueError as error:
        raise HTTPException(422, f"body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise HTTPException(422, "body must be a JSON object with 'status' and 'note'")
    try:
        disposition = request.app.state.runtime.dispositions.record(
            decision_id, body.get("status"), body.get("note"), principal.key_id,
            principal.role)
    except DispositionError as error:
        raise HTTPException(error.status, str(error)) from error
    return disposition.as_dict()


def decision_report_html(request: Request, decision_id: str) -> str:
    """The decision's standalone report (404 for an unknown decision)."""
    runtime = request.app.state.runtime
    try:
        context = decision_context(runtime.audit, runtime.dispositions,
                                   runtime.dispositions.engine, decision_id)
    except DecisionNotFoundError as error:
        raise HTTPException(404, str(error)) from error
    return render_decision_report(context)


@router.get("/decisions/{decision_id}/report", response_class=HTMLResponse)
async def decision_report(request: Request, decision_id: str) -> HTMLResponse:
    """A decision's standalone HTML report: record, score against threshold, reasons, SHAP
    waterfall, the party's usual behaviour, suspected network, dispositions, model, hashes."""
    principal_of(request, "read_reports")
    html = await run_in_threadpool(decision_report_html, request, decision_id)
    return HTMLResponse(html)


@router.get("/models/{name}/{version}/report", response_class=HTMLResponse)
async def model_report(request: Request, name: str, version: str) -> HTMLResponse:
    """A registered model version's report, written at training time and kept in its MLflow
    run: metrics beside the peer baseline, PR curve, SHAP summary, feature catalogue, data
    fingerprint, threshold policy."""
    principal_of(request, "read_models")
    try:
        html = await run_in_threadpool(load_model_report, name, version)
    except LookupError as error:
        raise HTTPException(404, str(error)) from error
    return HTMLResponse(html)


@router.get("/decisions/{decision_id}/goaml")
async def goaml_draft(request: Request, decision_id: str,
                      allow_unconfirmed: bool = False) -> Response:
    """A goAML STR draft (XML, validated against the shipped XSD) for a decision with a
    confirmed disposition (analysts, admins); ``allow_unconfirmed`` marks it UNCONFIRMED."""
    principal_of(request, "export_reports")
    runtime = request.app.state.runtime
    builder = DraftBuilder(runtime.audit, runtime.dispositions, GoamlConfig.load())
    try:
        document = await run_in_threadpool(builder.build, [decision_id], allow_unconfirmed)
    except GoamlError as error:
        raise HTTPException(error.status, str(error)) from error
    return Response(document, media_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="str-{decision_id}.xml"'})
