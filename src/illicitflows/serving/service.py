"""The BentoML service: a thin shell that loads the champions and mounts the HTTP API (``/v1``)
and the review page (``/ui``, on the API's state).

``bentoml serve`` (see bentofile.yaml) and ``illicitflows serve`` start this. One worker: the
transaction history state is sequential, and parity between streaming and batch scoring
depends on every record passing through the same state.
"""

from __future__ import annotations

import logging
import threading

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from illicitflows.serving import traffic
from illicitflows.serving.app import app
from illicitflows.serving.parent import end_with_parent
from illicitflows.serving.runtime import Runtime
from illicitflows.serving.ui import UI_PREFIX, ui

log = logging.getLogger("illicitflows.serving")
traffic.install()  # BentoML's request metrics by route template, before it builds its app


async def _to_api_docs(_: Request) -> RedirectResponse:
    return RedirectResponse(f"{traffic.API_PREFIX}/docs")


#: ``/docs``: the API's interactive documentation, at ``/v1/docs`` (document
#: ``/v1/openapi.json``), where the API is mounted.
docs = Starlette(routes=[Route("/", _to_api_docs)])


@bentoml.service(name="illicitflows", workers=1, traffic={"timeout": 300})
@bentoml.asgi_app(app, path=traffic.API_PREFIX)
@bentoml.asgi_app(docs, path="/docs")
@bentoml.asgi_app(ui, path=UI_PREFIX)
class IllicitFlows:
    """Loads both detectors in the background; ready once both are loaded."""

    def __init__(self) -> None:
        end_with_parent()  # no orphan worker holding the port when the server is killed
        self.runtime = Runtime()
        app.state.runtime = self.runtime
        self.loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self.loader.start()

    def _load(self) -> None:
        try:
            self.runtime.load()
        except Exception:  # keep the server alive and not ready; say why once
            log.exception("model loading failed")

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """On a stop: the audit writer commits what it holds and exits, the log's head is
        signed a last time (when checkpoints are on)."""
        self.runtime.close()
