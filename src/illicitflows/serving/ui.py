"""The review page for analysts and auditors, served by the service at ``/ui``: an alert queue,
decision views with dispositions, network views; server-rendered (Jinja2, a little script),
working offline. It works on the JSON API's state and queries (no second source of truth),
and links to the API (``/v1``) for reports, goAML drafts and dispositions.

Signing in keeps the API key in an HTTP-only, same-site session cookie for the whole server,
so the page's own calls to the JSON API (a disposition) are authorised as the API's Bearer
header would be; scorer keys are refused.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from illicitflows.access.keys import REVIEWERS, Principal, allowed
from illicitflows.audit.review import QueueFilter, QueuePage, model_versions, queue_page
from illicitflows.reports.behaviour import account
from illicitflows.reports.decision import DecisionNotFoundError, decision_context
from illicitflows.reports.render import CSS
from illicitflows.serving.app import API_PREFIX
from illicitflows.serving.app import app as api_app
from illicitflows.serving.runtime import Runtime
from illicitflows.serving.workbench import SESSION_COOKIE

#: Where the service mounts the review page.
UI_PREFIX = "/ui"
#: The review page, mounted by the service at :data:`UI_PREFIX` (no OpenAPI document: pages,
#: not API).
ui = FastAPI(title="illicitflows review", docs_url=None, redoc_url=None, openapi_url=None)
QUEUE_PAGE_SIZE = 50


def _runtime(request: Request) -> Runtime:
    """The service's state, as the JSON API holds it (one source of truth)."""
    return api_app.state.runtime


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


def _paths(request: Request) -> tuple[str, str, str]:
    """The JSON API's root, the review page's and the server's, from where the page is
    mounted (the service mounts it at ``/ui`` beside the API at ``/v1``)."""
    root = request.scope.get("root_path", "").rstrip("/")
    server = root.removesuffix(UI_PREFIX)
    return server + API_PREFIX, root, server or "/"


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    api, root, _ = _paths(request)
    html = _pages().get_template(template).render(css=CSS, api=api, root=root, **context)
    return HTMLResponse(html, status_code=status)


def _reviewer(request: Request) -> Principal:
    """The signed-in reviewer, from the session cookie; scorers are refused."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    principal = _runtime(request).keys.authenticate(secret) if secret else None
    if principal is None:
        raise _SignInError("" if not secret else "your key is no longer valid: sign in again")
    if principal.role not in REVIEWERS:
        raise _SignInError(f"a {principal.role} key cannot open the review page: use an analyst, "
                      "auditor or admin key", 403)
    return principal


def _sign_in_page(request: Request, refused: _SignInError) -> HTMLResponse:
    return _page(request, "signin.html.j2", refused.status, error=refused.message,
                 principal=None)


@ui.get("/", response_class=HTMLResponse)
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
    principal = _runtime(request).keys.authenticate(secret) if secret else None
    if principal is None:
        return _sign_in_page(request, _SignInError("unknown or revoked API key"))
    if principal.role not in REVIEWERS:
        return _sign_in_page(request, _SignInError(
            f"a {principal.role} key cannot open the review page: use an analyst, auditor or "
            "admin key", 403))
    _, root, server = _paths(request)
    answer = RedirectResponse(f"{root}/queue", status_code=303)
    # the page's own requests to the JSON API (a disposition) carry it too
    answer.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict",
                      path=server, secure=request.url.scheme == "https")
    return answer


@ui.post("/sign-out")
async def ui_sign_out(request: Request) -> Response:
    _, root, server = _paths(request)
    answer = RedirectResponse(f"{root}/", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path=server)
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
    engine = _runtime(request).dispositions.engine
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
    root = _paths(request)[1]

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
    runtime = _runtime(request)
    api = _paths(request)[0]
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
