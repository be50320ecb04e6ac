"""The analysts' and auditors' workbench: dispositions, decision and model reports, goAML
drafts (JSON API) and the review page under ``/ui`` (server-rendered, same queries).

Callers sign in with an API key: ``Authorization: Bearer <key>`` for the JSON API, or the
review page's sign-in form, which keeps the key in an HTTP-only, same-site session cookie (the
key itself: the key store stays the one place that knows who may do what).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import pydantic_core
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from illicitflows.access.keys import REVIEWERS, Principal, allowed
from illicitflows.audit.dispositions import DispositionError
from illicitflows.audit.review import QueueFilter, QueuePage, model_versions, queue_page
from illicitflows.reports.behaviour import account
from illicitflows.reports.decision import (
    DecisionNotFoundError,
    decision_context,
    render_decision_report,
)
from illicitflows.reports.goaml.draft import DraftBuilder, GoamlConfig, GoamlError
from illicitflows.reports.model import load_model_report
from illicitflows.reports.render import CSS

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


# The review page: server-rendered from the same queries and reports as the JSON API above.
ui = APIRouter(prefix="/ui", include_in_schema=False)
QUEUE_PAGE_SIZE = 50


@cache
def _pages() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.ChoiceLoader([
        jinja2.PackageLoader("illicitflows.serving", "templates"),
        jinja2.PackageLoader("illicitflows.reports", "templates")]),
        autoescape=True, trim_blocks=True, lstrip_blocks=True)


class _SignInError(Exception):
    """The review page needs a (reviewer's) key first."""

    def __init__(self, message: str = "", status: int = 401) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _paths(request: Request) -> tuple[str, str]:
    """The JSON API's root and the review page's, wherever the app is mounted."""
    api = request.scope.get("root_path", "").rstrip("/")
    return api, f"{api}/ui"


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    api, root = _paths(request)
    html = _pages().get_template(template).render(css=CSS, api=api, root=root, **context)
    return HTMLResponse(html, status_code=status)


def _reviewer(request: Request) -> Principal:
    """The signed-in reviewer, from the session cookie; scorers are refused."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    principal = request.app.state.runtime.keys.authenticate(secret) if secret else None
    if principal is None:
        raise _SignInError("" if not secret else "your key is no longer valid: sign in again")
    if principal.role not in REVIEWERS:
        raise _SignInError(f"a {principal.role} key cannot open the review page: use an analyst, "
                      "auditor or admin key", 403)
    return principal


def _sign_in_page(request: Request, refused: _SignInError) -> HTMLResponse:
    return _page(request, "signin.html.j2", refused.status, error=refused.message,
                 principal=None)


@ui.get("", response_class=HTMLResponse)
async def ui_home(request: Request) -> Response:
    try:
        _reviewer(request)
    except _SignInError as refused:
        return _sign_in_page(request, refused)
    return RedirectResponse(f"{_paths(request)[1]}/queue", status_code=303)


@ui.post("/sign-in")
async def ui_sign_in(request: Request) -> Response:
    """Check the key and keep it in an HTTP-only, same-site session cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("key") or [""])[0].strip()
    principal = request.app.state.runtime.keys.authenticate(secret) if secret else None
    if principal is None:
        return _sign_in_page(request, _SignInError("unknown or revoked API key"))
    if principal.role not in REVIEWERS:
        return _sign_in_page(request, _SignInError(
            f"a {principal.role} key cannot open the review page: use an analyst, auditor or "
            "admin key", 403))
    api, root = _paths(request)
    answer = RedirectResponse(f"{root}/queue", status_code=303)
    answer.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict",
                      path=api or "/", secure=request.url.scheme == "https")
    return answer


@ui.post("/sign-out")
async def ui_sign_out(request: Request) -> Response:
    api, root = _paths(request)
    answer = RedirectResponse(root, status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path=api or "/")
    return answer


def _number(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError as error:
        raise ValueError(f"{name}: not a number: {text!r}") from error


def _summary(item: dict[str, Any]) -> str:
    record = item["record"]
    if item["detector"] == "transactions":
        return (f"{account(record, 'from')} -> {account(record, 'to')}, "
                f"{float(record.get('amount_paid') or 0):,.2f} {record.get('payment_currency')}"
                f", {record.get('payment_format')}")
    return (f"importer {record.get('importer_id')}, HS {record.get('hs6')} from "
            f"{record.get('origin_country')}, {float(record.get('declared_value') or 0):,.0f} "
            f"{record.get('currency')}")


@ui.get("/queue", response_class=HTMLResponse)
async def ui_queue(request: Request, page: int = 1) -> Response:
    """Flagged decisions newest first, filtered, with counts by disposition status."""
    try:
        principal = _reviewer(request)
    except _SignInError as refused:
        return _sign_in_page(request, refused)
    params = {k: v for k, v in request.query_params.items() if v}
    engine = request.app.state.runtime.dispositions.engine
    error, found = "", QueuePage(items=[], total=0, page=1, page_size=QUEUE_PAGE_SIZE)
    try:
        to_day = params.get("to")
        queue = QueueFilter(
            from_time=params.get("from"),
            to_time=(date.fromisoformat(to_day) + timedelta(days=1)).isoformat()
            if to_day and len(to_day) == 10 else to_day,
            detector=params.get("detector"), model_version=params.get("model_version"),
            min_score=_number(params.get("min_score"), "score from"),
            max_score=_number(params.get("max_score"), "score to"),
            flagged=None if params.get("flagged") == "all" else True,
            disposition=params.get("disposition"))
        found = await run_in_threadpool(queue_page, engine, queue, max(page, 1),
                                        QUEUE_PAGE_SIZE, False, False)
    except ValueError as problem:
        error = str(problem)
    _, root = _paths(request)

    def link(number: int) -> str:
        return f"{root}/queue?{urlencode({**params, 'page': number})}"

    return _page(request, "queue.html.j2", principal=principal, page=found, f=params,
                 error=error, versions=model_versions(engine), summary=_summary, link=link,
                 pages=max(1, -(-found.total // QUEUE_PAGE_SIZE)))


def _decision_page(request: Request, decision_id: str, template: str) -> Response:
    try:
        principal = _reviewer(request)
    except _SignInError as refused:
        return _sign_in_page(request, refused)
    runtime = request.app.state.runtime
    api, _ = _paths(request)
    try:
        context = decision_context(runtime.audit, runtime.dispositions,
                                   runtime.dispositions.engine, decision_id, base=api)
    except DecisionNotFoundError as error:
        return _page(request, "signin.html.j2", 404, principal=principal, error=str(error))
    return _page(request, template, principal=principal,
                 can_dispose=allowed(principal.role, "record_dispositions"), **context)


@ui.get("/decisions/{decision_id}", response_class=HTMLResponse)
async def ui_decision(request: Request, decision_id: str) -> Response:
    """A decision's report, with the disposition buttons for analysts and admins."""
    return await run_in_threadpool(_decision_page, request, decision_id, "decision.html.j2")


@ui.get("/decisions/{decision_id}/network", response_class=HTMLResponse)
async def ui_network(request: Request, decision_id: str) -> Response:
    """The suspected network around a flagged transfer."""
    return await run_in_threadpool(_decision_page, request, decision_id, "network.html.j2")


router.include_router(ui)


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
