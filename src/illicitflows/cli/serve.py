"""``illicitflows serve``: start the scoring service (the same one ``bentoml serve`` starts)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from illicitflows.serving.parent import SERVER_PID_ENV

SERVICE = "illicitflows.serving.service:IllicitFlows"


def serve(port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
          host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
          tracking_uri: Annotated[str | None, typer.Option(
              help="MLflow tracking URI the champions are loaded from.")] = None) -> None:
    """Serve the API on http://HOST:PORT (OpenAPI at /docs, health at /livez and /readyz)."""
    env = {**os.environ, SERVER_PID_ENV: str(os.getpid())}  # execve keeps the pid
    if tracking_uri:
        env["ILLICITFLOWS_TRACKING_URI"] = tracking_uri
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host,
               "--port", str(port)]
    os.execve(sys.executable, command, env)  # signals reach the server directly
