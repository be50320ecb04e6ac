"""The HTTP API (FastAPI, mounted in the BentoML service): JSON in, decisions out.

No business logic here: authentication, request shape, status codes, then the engine. Every
malformed input gets a 4xx JSON answer naming what is wrong, never a 500.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import bentoml
import pydantic_core
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from illicitflows.access.keys import Principal, allowed
from illicitflows.audit.checkpoints import default_path as checkpoint_file
from illicitflows.audit.checkpoints import inclusion_proof
from illicitflows.serving.engine import (
    HistoryWriteError,
    InputError,
    ScoredBatch,
    Scorer,
    risk_bands,
)
from illicitflows.serving.laps import Laps
from illicitflows.serving.runtime import Runtime
from illicitflows.serving.schemas import (
    DecisionPage,
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

app = FastAPI(title="illicitflows", version="1",
              description="Scores payment transactions for asset laundering and customs "
                          "declarations for mis-invoicing; every decision is audit-logged.")


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


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def authorize(request: Request, permission: str) -> Principal:
    """The caller's key; 401 without a valid one, 403 when its role lacks ``permission``."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'")
    principal = runtime_of(request).keys.authenticate(secret.strip())
    if principal is None:
        raise ApiError(401, "invalid or revoked API key")
    if not allowed(principal.role, permission):
        raise ApiError(403, f"role {principal.role!r} may not {permission.replace('_', ' ')}")
    return principal


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; 415 for another content type, 422 when unreadable."""
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise ApiError(415, f"content type must be application/json, got {content_type!r}")
    try:  # Rust's parser: a third faster than json.loads (a sixth more with only keys cached);
        # UTF-8 only (RFC 8259), and text with lone surrogates refused
        body = pydantic_core.from_json(await request.body(), cache_strings="keys")
    except ValueError as error:
        raise ApiError(422, f"body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    return body


def records_of(body: dict[str, Any], key: str, limit: int) -> list[dict[str, Any]]:
    """The list of records under ``key``: 413 over the limit, 422 when malformed."""
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
    if explain not in ("flagged", "all"):
        raise ApiError(422, "'explain' must be 'flagged' or 'all'",
                       [{"index": None, "field": "explain", "reason": "unknown value"}])
    return records


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
    body = await json_body(request)
    laps.lap("parse")
    runtime = runtime_of(request)
    records = records_of(body, key, runtime.settings.max_records)
    top_k = body.get("top_k", 5)
    if not isinstance(top_k, int) or not 1 <= top_k <= 20:
        raise ApiError(422, "'top_k' must be an integer from 1 to 20")
    scorer = scorer_for(request, domain)
    request_id = uuid.uuid4().hex

    def body_of(batch: ScoredBatch) -> bytes:  # rendered while the audit log writes
        return pydantic_core.to_json(render(batch, scorer, request_id), inf_nan_mode="null")

    try:
        batch = scorer.score(records, runtime.audit_sink(scorer, request_id, principal.key_id),
                             explain_all=body.get("explain") == "all", top_k=top_k, laps=laps,
                             render=body_of)
    except InputError as error:
        raise ApiError(422, f"{len(error.issues)} invalid field(s)", error.issues) from error
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
        "model": model} for d, band in zip(batch.decisions, bands, strict=True)]
    roll_name = "accounts" if scorer.detector.domain == "transactions" else "importers"
    document = {"request_id": request_id, "results": results, roll_name: batch.rollups}
    if scorer.detector.domain == "transactions":
        document["networks"] = batch.networks
    return document


@app.post("/transactions/score", response_model=ScoreResponse,
          openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
              "schema": TransactionScoreRequest.model_json_schema()}}}})
async def score_transactions(request: Request) -> Response:
    """Score payment transactions for asset laundering (1..limit records)."""
    return await score(request, "transactions", "transactions")


@app.post("/trade/score", response_model=ScoreResponse,
          openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
              "schema": TradeScoreRequest.model_json_schema()}}}})
async def score_trade(request: Request) -> Response:
    """Score customs import declarations for mis-invoicing and smuggling."""
    return await score(request, "trade", "declarations")


@app.get("/decisions/{decision_id}")
async def get_decision(request: Request, decision_id: str) -> dict[str, Any]:
    """One logged decision with its input, model version, explanation and chain hashes."""
    authorize(request, "read_decisions")
    stored = runtime_of(request).audit.get(decision_id)
    if stored is None:
        raise ApiError(404, f"no decision {decision_id!r}")
    return _stored_dict(stored)


@app.get("/decisions/{decision_id}/proof")
async def decision_proof(request: Request, decision_id: str) -> dict[str, Any]:
    """RFC 6962 inclusion proof of a decision in the log as signed by the latest checkpoint
    covering it (its audit path and that signed checkpoint); 409 until one covers it."""
    authorize(request, "read_decisions")
    try:
        return await run_in_threadpool(inclusion_proof, runtime_of(request).audit, decision_id,
                                       checkpoint_file())
    except LookupError as error:
        raise ApiError(404, f"no decision {decision_id!r}") from error
    except ValueError as error:
        raise ApiError(409, str(error)) from error


@app.get("/decisions", response_model=DecisionPage)
async def list_decisions(request: Request, page: int = 1, page_size: int = 100,
                         flagged: bool | None = None, model_version: str | None = None,
                         detector: str | None = None) -> dict[str, Any]:
    """Logged decisions filtered by time (``from``, ``to``), flag, model version, detector."""
    authorize(request, "read_decisions")
    if page < 1 or not 1 <= page_size <= 1000:
        raise ApiError(422, "page must be >= 1 and page_size from 1 to 1000")
    params = request.query_params
    result = runtime_of(request).audit.query(
        from_time=params.get("from"), to_time=params.get("to"), flagged=flagged,
        model_version=model_version, detector=detector, page=page, page_size=page_size)
    return {"items": [_stored_dict(d) for d in result.items], "total": result.total,
            "page": result.page, "page_size": result.page_size}


@app.get("/models", response_model=list[ModelInfo])
async def models(request: Request) -> list[dict[str, Any]]:
    """The loaded detectors: name, version, run id, threshold, training metrics."""
    authorize(request, "read_models")
    return [{"detector": domain, "name": s.model.name, "version": s.model.version,
             "run_id": s.model.run_id, "threshold": s.detector.threshold,
             "features_version": s.detector.builder.version,
             "training_metrics": s.detector.info.get("test", {})}
            for domain, s in runtime_of(request).scorers.items()]


@app.post("/admin/reload")
async def reload_models(request: Request) -> dict[str, Any]:
    """Load the registry's current champions (after a promotion) without a restart."""
    authorize(request, "manage_models")
    runtime = runtime_of(request)
    await run_in_threadpool(runtime.load)
    return {"loaded": {d: s.model.version for d, s in runtime.scorers.items()},
            "problems": runtime.problems, "ready": runtime.ready}


def _stored_dict(stored: Any) -> dict[str, Any]:
    fields = stored.__dataclass_fields__ if hasattr(stored, "__dataclass_fields__") else {}
    return {name: getattr(stored, name) for name in fields}
