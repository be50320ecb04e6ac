"""The HTTP API (FastAPI, mounted in the BentoML service): JSON in, decisions out.

No business logic here: authentication, request shape, status codes, then the engine. Every
malformed input gets a 4xx JSON answer naming what is wrong, never a 500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import bentoml
import pydantic_core
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from illicitflows.access.keys import Principal, allowed
from illicitflows.audit.checkpoints import default_path as checkpoint_file
from illicitflows.audit.checkpoints import inclusion_proof
from illicitflows.audit.dispositions import STATUSES
from illicitflows.audit.review import UNREVIEWED, QueueFilter, queue_page
from illicitflows.audit.store import MAX_PAGE_SIZE
from illicitflows.serving import workbench
from illicitflows.serving.batching import UnavailableError
from illicitflows.serving.engine import (
    ConflictError,
    HistoryWriteError,
    InputError,
    ScoredBatch,
    Scorer,
    ScoreRequest,
    risk_bands,
)
from illicitflows.serving.laps import Laps
from illicitflows.serving.limits import value_issues
from illicitflows.serving.period_review import (
    ReviewInputError,
    ReviewUnavailableError,
    period_of,
    review_and_log,
)
from illicitflows.serving.runtime import DETECTORS, Runtime
from illicitflows.serving.schemas import (
    AccountReviewRequest,
    AccountReviewResponse,
    DecisionPage,
    ErrorBody,
    ModelInfo,
    ScoreResponse,
    TradeScoreRequest,
    TransactionScoreRequest,
)

REQUESTS = bentoml.metrics.Counter(name="illicitflows_requests_total",
                                   documentation="API requests by endpoint and status",
                                   labelnames=["endpoint", "status"])
LATENCY = bentoml.metrics.Histogram(name="illicitflows_request_seconds",
                                    documentation="API request latency by endpoint",
                                    labelnames=["endpoint"],
                                    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
STAGES = bentoml.metrics.Histogram(name="illicitflows_stage_seconds",
                                   documentation="Scoring time by detector and stage (auth, "
                                                 "parse, validate, queue, features, predict, "
                                                 "explain, records, history, rollups, respond; "
                                                 "audit: handing the decisions to the audit "
                                                 "log and waiting for its commit beyond the "
                                                 "history, roll-ups and response it overlaps)",
                                   labelnames=["detector", "stage"],
                                   buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5, 1, 5))
DECISIONS = bentoml.metrics.Counter(name="illicitflows_decisions_total",
                                    documentation="Decisions by model version and flag",
                                    labelnames=["model", "version", "flagged"])

#: Where the service mounts this API (the review page, :mod:`.ui`, links to it there).
API_PREFIX = "/v1"
app = FastAPI(title="illicitflows", version="1",
              description="Scores payment transactions for asset laundering and customs "
                          "declarations for mis-invoicing; every decision is audit-logged. "
                          "Send an API key as 'Authorization: Bearer <key>': scorers score, "
                          "auditors read decisions and models, admins do both.")
#: Declares the bearer key in the OpenAPI document; :func:`authorize` checks it.
BEARER = HTTPBearer(scheme_name="bearer", auto_error=False,
                    description="An API key from 'illicitflows keys create'.")
#: Latest page a decision listing may ask for (its offset stays within 64-bit integers).
MAX_PAGE = 10**9


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []


@app.exception_handler(ApiError)
async def _api_error(_: Request, error: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"detail": error.detail}
    if error.errors:
        body["errors"] = error.errors
    return JSONResponse(body, status_code=error.status)


@app.exception_handler(RequestValidationError)
async def _bad_parameters(_: Request, error: RequestValidationError) -> JSONResponse:
    """A query or path parameter FastAPI could not read: 422 naming each one."""
    issues = [{"index": None, "field": str(e["loc"][-1]) if e.get("loc") else None,
               "reason": e.get("msg", "invalid"),
               "value": _quoted(e.get("input"))} for e in error.errors()]
    named = ", ".join(sorted({str(i["field"]) for i in issues}))
    return JSONResponse({"detail": f"invalid parameter(s): {named}", "errors": issues},
                        status_code=422)


def _quoted(value: Any) -> str | None:
    """A parameter's value as given, cut short (it comes from the caller)."""
    return None if value is None else str(value)[:64]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of the error statuses an endpoint answers."""
    described = {401: "No valid API key", 403: "The key's role may not do this",
                 404: "Not found", 409: "Not possible in the current state (no signed "
                                        "checkpoint covers it yet, no confirmed disposition, "
                                        "a model version without an account ranker)",
                 413: "Body or record count over the limit", 415: "Body not application/json",
                 422: "Invalid input: each problem names its record index and field, or the "
                      "parameter", 503: "Detector not loaded or out of service"}
    return {status: {"model": ErrorBody, "description": described[status]}
            for status in statuses}


class Measure:
    """Counts requests by endpoint and status and times them (plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a memory stream per request)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            endpoint = route.path if route else "unmatched"
            REQUESTS.labels(endpoint=endpoint, status=str(status)).inc()
            LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - started)


app.add_middleware(Measure)
# dispositions, reports and goAML drafts: a missing or weaker key, an unknown decision or model,
# an export that needs a confirmed disposition, a bad body or parameter
app.include_router(workbench.router, responses=errors(401, 403, 404, 409, 422))


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def authorize(request: Request, permission: str) -> Principal:
    """The caller's key; 401 without a valid one, 403 when its role lacks ``permission``."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'")
    runtime = runtime_of(request)
    principal = runtime.keys.authenticate(secret.strip(),
                                          max_age=runtime.settings.key_cache_seconds)
    if principal is None:
        raise ApiError(401, "invalid or revoked API key")
    if not allowed(principal.role, permission):
        raise ApiError(403, f"role {principal.role!r} may not {permission.replace('_', ' ')}")
    return principal


def caller(permission: str) -> Callable[..., Principal]:
    """A dependency authorizing ``permission`` (it runs before the parameters are read, so a
    caller without a key gets 401 whatever the parameters)."""

    def dependency(request: Request, _: Annotated[Any, Security(BEARER)]) -> Principal:
        return authorize(request, permission)

    return dependency


async def json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object; 415 for another content type, 413 once the body passes
    ``max_bytes`` (counted as it arrives, whatever Content-Length says), 422 when unreadable."""
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise ApiError(415, f"content type must be application/json, got {content_type!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"body of {int(declared):,} bytes exceeds the limit of "
                            f"{max_bytes:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"body exceeds the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    try:  # Rust's parser: a third faster than json.loads (a sixth more with only keys cached);
        # UTF-8 only (RFC 8259), text with lone surrogates refused, nesting beyond 200 levels
        # refused before anything that deep is built
        body = pydantic_core.from_json(b"".join(chunks), cache_strings="keys")
    except ValueError as error:
        raise ApiError(422, f"body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


def records_of(body: dict[str, Any], key: str, limit: int) -> list[dict[str, Any]]:
    """The list of records under ``key``: 413 over the limit, 422 when malformed (another
    field than the records, ``explain`` and ``top_k`` included: nothing is ignored)."""
    unknown = [{"index": None, "field": name[:64], "reason": "unknown field"}
               for name in body if name not in (key, "explain", "top_k")]
    if unknown:
        raise ApiError(422, f"body may hold '{key}', 'explain' and 'top_k' only", unknown)
    records = body.get(key)
    if not isinstance(records, list) or not records:
        raise ApiError(422, f"body needs '{key}': a non-empty list of records",
                       [{"index": None, "field": key, "reason": "missing or not a list"}])
    if len(records) > limit:
        raise ApiError(413, f"{len(records):,} records exceed the limit of {limit:,} per request")
    bad = [{"index": i, "field": None, "reason": "record is not a JSON object"}
           for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise ApiError(422, "records must be JSON objects", bad)
    explain = body.get("explain", "flagged")
    if type(explain) is not str or explain not in ("flagged", "all"):
        raise ApiError(422, "'explain' must be 'flagged' or 'all'",
                       [{"index": None, "field": "explain", "reason": "unknown value"}])
    return records


def top_k_of(body: dict[str, Any]) -> int:
    """Reasons per explained record: an integer from 1 to 20 (not a boolean), 5 by default."""
    top_k = body.get("top_k", 5)
    if type(top_k) is not int or not 1 <= top_k <= 20:
        raise ApiError(422, "'top_k' must be an integer from 1 to 20",
                       [{"index": None, "field": "top_k", "reason": "not an integer from 1 to 20",
                         "value": _quoted(top_k)}])
    return top_k


def scorer_for(request: Request, domain: str) -> Scorer:
    runtime = runtime_of(request)
    if domain not in runtime.scorers:
        problem = runtime.problems.get(domain, "not loaded yet")
        raise ApiError(503, f"{domain} detector unavailable: {problem}")
    return runtime.scorers[domain]


async def score(request: Request, domain: str, key: str) -> Response:
    """Shared body of both scoring endpoints."""
    laps = Laps()
    principal = authorize(request, "score")
    laps.lap("auth")
    runtime = runtime_of(request)
    settings = runtime.settings
    body = await json_body(request, settings.max_body_bytes)
    laps.lap("parse")
    records = records_of(body, key, settings.max_records)
    top_k = top_k_of(body)
    beyond = value_issues(records, settings.max_text_chars, settings.max_number)
    if beyond:
        raise ApiError(422, f"{len(beyond)} value(s) beyond the request limits", beyond)
    scorer = scorer_for(request, domain)
    request_id = uuid.uuid4().hex

    def body_of(batch: ScoredBatch) -> bytes:  # rendered while the audit log writes
        return pydantic_core.to_json(render(batch, scorer, request_id), inf_nan_mode="null")

    scoring = ScoreRequest(records, request_id, principal.key_id,
                           explain_all=body.get("explain") == "all", top_k=top_k,
                           render=body_of, laps=laps)
    try:  # scored with the requests arriving with it, answered once its decisions are logged
        batch = await asyncio.wrap_future(runtime.batcher(domain).submit(scoring))
    except (KeyError, UnavailableError) as error:
        raise ApiError(503, f"{domain} detector unavailable: "
                            f"{runtime.problems.get(domain, error)}") from error
    except InputError as error:
        raise ApiError(422, f"{len(error.issues)} invalid field(s)", error.issues) from error
    except ConflictError as error:
        raise ApiError(409, str(error), error.issues) from error
    except HistoryWriteError as error:
        runtime.retire(domain, str(error))
        raise ApiError(503, f"{error}; the detector is out of service until "
                            "POST /v1/admin/reload or a restart restores its history") from error
    for flagged, count in Counter(d.flagged for d in batch.decisions).items():
        DECISIONS.labels(model=scorer.model.name, version=scorer.model.version,
                         flagged=str(flagged).lower()).inc(count)
    laps.lap("respond")
    for stage, seconds in laps.seconds.items():
        STAGES.labels(detector=domain, stage=stage).observe(seconds)
    return Response(batch.rendered, media_type="application/json")


def render(batch: ScoredBatch, scorer: Scorer, request_id: str) -> dict[str, Any]:
    """The response document of a scored batch: a :class:`ScoreResponse` without null fields
    (built as plain data: validating it on every request costs more than building it)."""
    model = {"name": scorer.model.name, "version": scorer.model.version}
    bands = risk_bands([d.score for d in batch.decisions], scorer.detector.threshold)
    results = [{
        "id": d.record_id, "decision_id": d.decision_id, "score": d.score,
        "flagged": d.flagged, "threshold": d.threshold, "risk_band": band,
        "reasons": [{k: v for k, v in r.as_dict().items() if v is not None}
                    for r in d.explanation.reasons] if d.explanation else [],
        "model": model, **({"repeat": True} if d.repeat else {})}
        for d, band in zip(batch.decisions, bands, strict=True)]
    roll_name = "accounts" if scorer.detector.domain == "transactions" else "importers"
    document = {"request_id": request_id, "results": results, roll_name: batch.rollups}
    if scorer.detector.domain == "transactions":
        document["networks"] = batch.networks
    return document


def request_body(model: type) -> dict[str, Any]:
    """The OpenAPI request body of a scoring endpoint (the schema is a component, see
    :func:`openapi`)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


@app.post("/transactions/score", response_model=ScoreResponse,
          dependencies=[Security(BEARER)], openapi_extra=request_body(TransactionScoreRequest),
          responses=errors(401, 403, 413, 415, 422, 503))
async def score_transactions(request: Request) -> Response:
    """Score payment transactions for asset laundering (1..limit records)."""
    return await score(request, "transactions", "transactions")


@app.post("/trade/score", response_model=ScoreResponse, dependencies=[Security(BEARER)],
          openapi_extra=request_body(TradeScoreRequest),
          responses=errors(401, 403, 413, 415, 422, 503))
async def score_trade(request: Request) -> Response:
    """Score customs import declarations for mis-invoicing and smuggling."""
    return await score(request, "trade", "declarations")


@app.post("/transactions/review", response_model=AccountReviewResponse,
          dependencies=[Security(BEARER)], openapi_extra=request_body(AccountReviewRequest),
          responses=errors(401, 403, 409, 413, 415, 422, 503))
async def review_transactions(request: Request) -> dict[str, Any]:
    """Retrospective account review of a period of the stored transaction history (not
    real-time scoring): the accounts active in [from, to) ranked with everything known up to
    ``to`` by the served model's account ranker, with their red-flag families, the transfers
    behind them and the networks flagged accounts form; nothing stamped at or after ``to`` is
    read. Logged in the audit chain (who, period, model, result hash) before the answer."""
    principal = authorize(request, "review_accounts")
    runtime = runtime_of(request)
    body = await json_body(request, runtime.settings.max_body_bytes)
    try:
        period = period_of(body)
        scorer = scorer_for(request, "transactions")
        return await run_in_threadpool(review_and_log, scorer, runtime.reviews, period,
                                       principal.key_id, principal.role,
                                       runtime.settings.max_review_transfers)
    except ReviewInputError as error:
        raise ApiError(422, f"cannot review this period: {error}", [
            {"index": None, "field": error.field, "reason": error.reason,
             "value": _quoted(error.value)}]) from error
    except ReviewUnavailableError as error:
        raise ApiError(409, str(error)) from error


@app.get("/decisions/{decision_id}", responses=errors(401, 403, 404))
async def get_decision(decision_id: str, request: Request,
                       _: Annotated[Principal, Depends(caller("read_decisions"))],
                       ) -> dict[str, Any]:
    """One logged decision with its input, model version, explanation and chain hashes."""
    stored = runtime_of(request).audit.get(decision_id)
    if stored is None:
        raise ApiError(404, f"no decision {decision_id[:64]!r}")
    return {**_stored_dict(stored), "dispositions": [
        d.as_dict() for d in runtime_of(request).dispositions.history(decision_id)]}


@app.get("/decisions/{decision_id}/proof", responses=errors(401, 403, 404, 409))
async def decision_proof(decision_id: str, request: Request,
                         _: Annotated[Principal, Depends(caller("read_decisions"))],
                         ) -> dict[str, Any]:
    """RFC 6962 inclusion proof of a decision in the log as signed by the latest checkpoint
    covering it (its audit path and that signed checkpoint); 409 until one covers it."""
    try:
        return await run_in_threadpool(inclusion_proof, runtime_of(request).audit, decision_id,
                                       checkpoint_file())
    except LookupError as error:
        raise ApiError(404, f"no decision {decision_id[:64]!r}") from error
    except ValueError as error:
        raise ApiError(409, str(error)) from error


#: Values of the decisions list's ``disposition`` filter: a latest status, or none yet.
DISPOSITIONS = (*sorted(STATUSES), UNREVIEWED)
TIME_PARAMETER = {"format": "date-time", "examples": ["2024-01-31T00:00:00Z"]}


@app.get("/decisions", response_model=DecisionPage, responses=errors(401, 403, 422))
async def list_decisions(
        request: Request, _: Annotated[Principal, Depends(caller("read_decisions"))],
        from_: Annotated[str | None, Query(
            alias="from", max_length=64, json_schema_extra=TIME_PARAMETER,
            description="Decisions made at or after this ISO-8601 time (UTC when it has no "
                        "offset)")] = None,
        to: Annotated[str | None, Query(
            max_length=64, json_schema_extra=TIME_PARAMETER,
            description="Decisions made before this ISO-8601 time")] = None,
        flagged: bool | None = None,
        model_version: Annotated[str | None, Query(max_length=64)] = None,
        detector: Literal[DETECTORS] | None = None,  # type: ignore[valid-type]
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
        disposition: Literal[DISPOSITIONS] | None = None,  # type: ignore[valid-type]
) -> dict[str, Any]:
    """Logged decisions filtered by time (``from``, ``to``), flag, model version, detector and
    latest disposition status (confirmed, dismissed, escalated, or none), oldest first."""
    from_time, to_time = moment("from", from_), moment("to", to)
    if disposition is not None:
        queue = QueueFilter(from_time=from_time, to_time=to_time, detector=detector,
                            model_version=model_version, flagged=flagged,
                            disposition=disposition)
        found = queue_page(runtime_of(request).dispositions.engine, queue, page, page_size,
                           oldest_first=True)
        return {"items": found.items, "total": found.total, "page": page,
                "page_size": page_size}
    result = runtime_of(request).audit.query(
        from_time=from_time, to_time=to_time, flagged=flagged,
        model_version=model_version, detector=detector, page=page, page_size=page_size)
    return {"items": [_stored_dict(d) for d in result.items], "total": result.total,
            "page": result.page, "page_size": result.page_size}


def moment(name: str, text: str | None) -> datetime | None:
    """The UTC time of query parameter ``name`` (ISO 8601; no offset means UTC), or 422."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
        return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None
                else parsed.astimezone(UTC))
    except (ValueError, OverflowError) as error:  # not a time; an offset beyond the calendar
        raise ApiError(422, f"'{name}' must be an ISO-8601 time such as 2024-01-31T00:00:00Z",
                       [{"index": None, "field": name, "reason": str(error),
                         "value": _quoted(text)}]) from error


@app.get("/models", response_model=list[ModelInfo], responses=errors(401, 403))
async def models(request: Request, _: Annotated[Principal, Depends(caller("read_models"))],
                 ) -> list[dict[str, Any]]:
    """The loaded detectors: name, version, run id, threshold, training metrics."""
    return [{"detector": domain, "name": s.model.name, "version": s.model.version,
             "run_id": s.model.run_id, "threshold": s.detector.threshold,
             "features_version": s.detector.builder.version,
             "training_metrics": s.detector.info.get("test", {})}
            for domain, s in runtime_of(request).scorers.items()]


@app.post("/admin/reload", responses=errors(401, 403))
async def reload_models(request: Request,
                        _: Annotated[Principal, Depends(caller("manage_models"))],
                        ) -> dict[str, Any]:
    """Load the registry's current champions (after a promotion) without a restart."""
    runtime = runtime_of(request)
    await run_in_threadpool(runtime.load)
    return {"loaded": {d: s.model.version for d, s in runtime.scorers.items()},
            "problems": runtime.problems, "ready": runtime.ready}


def openapi() -> dict[str, Any]:
    """FastAPI's document, with the scoring request models (read by hand, not by FastAPI) as
    components, so that their references resolve."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (TransactionScoreRequest, TradeScoreRequest, AccountReviewRequest):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
        app.openapi_schema = document
    return app.openapi_schema


app.openapi = openapi  # type: ignore[method-assign]


def _stored_dict(stored: Any) -> dict[str, Any]:
    fields = stored.__dataclass_fields__ if hasattr(stored, "__dataclass_fields__") else {}
    return {name: getattr(stored, name) for name in fields}
