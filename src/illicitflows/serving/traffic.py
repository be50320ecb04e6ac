"""BentoML's own request metrics labelled by route template, not by the raw path.

BentoML's traffic middleware labels ``bentoml_service_request_*`` with ``endpoint`` =
``scope["path"]``, and has no setting to change it: every distinct path a caller makes up
(``/v1/decisions/<random id>``, with or without a key) is a new series held by the worker for
good. :class:`RouteLabelledMetrics` stands in for that middleware: it runs BentoML's own with
the path replaced by the path's route template (``/v1/decisions/{decision_id}``,
``/ui/decisions/{decision_id}``; paths no route serves are ``unmatched``) and gives the
application the real path back.
"""

from __future__ import annotations

from typing import Any

from bentoml._internal.server.http import instruments
from starlette.types import ASGIApp, Receive, Scope, Send

from illicitflows.serving.app import API_PREFIX
from illicitflows.serving.app import app as api
from illicitflows.serving.ui import UI_PREFIX, ui

#: The service's own applications, by the path they are mounted at.
MOUNTED = ((API_PREFIX, api), (UI_PREFIX, ui))
#: The routes of BentoML's own application (``/docs`` is the service's redirect).
BENTO_PATHS = frozenset({"/", "/docs", "/docs/", "/docs.json", "/schema.json", "/livez",
                         "/healthz", "/readyz", "/metrics"})
STATIC_PREFIXES = ("/static_content/", "/assets/")
UNMATCHED = "unmatched"
_REAL_PATH = "illicitflows.real_path"  # scope key holding the path as requested
_BENTO_METRICS = instruments.RunnerTrafficMetricsMiddleware


def route_label(path: str) -> str:
    """The route template serving ``path``, or :data:`UNMATCHED`."""
    if path in BENTO_PATHS:
        return path
    for prefix in STATIC_PREFIXES:
        if path.startswith(prefix):
            return prefix + "{path}"
    for prefix, mounted in MOUNTED:
        if path == prefix or path.startswith(prefix + "/"):
            inner = path[len(prefix):] or "/"
            for route in mounted.routes:
                regex = getattr(route, "path_regex", None)
                if regex is not None and regex.match(inner):
                    return prefix + route.path  # type: ignore[attr-defined]
    return UNMATCHED


class _RealPath:
    """Gives the application the path :class:`RouteLabelledMetrics` replaced."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _REAL_PATH in scope:
            scope = {**scope, "path": scope[_REAL_PATH]}
        await self.inner(scope, receive, send)


class RouteLabelledMetrics:
    """BentoML's traffic metrics middleware, shown the route template as the path."""

    def __init__(self, inner: ASGIApp, **options: Any) -> None:
        self.metered = _BENTO_METRICS(_RealPath(inner), **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.metered(scope, receive, send)
            return
        path = scope["path"]
        await self.metered({**scope, "path": route_label(path), _REAL_PATH: path}, receive,
                           send)


def install() -> None:
    """Make BentoML build :class:`RouteLabelledMetrics` where it builds its own middleware
    (it looks the class up in its module when the server application is made)."""
    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics  # type: ignore[misc]
