"""Rendering the metrics: the api's GET /metrics and a worker's own metrics port.

With PROMETHEUS_MULTIPROC_DIR set (`procore-hooks api --workers N`, which sets and empties it),
each process writes its samples to files there and a scrape sums them. The deployment runs one
process per container, where it stays unset.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from pydantic import SecretStr

from app import bearer
from app.health.worker import WorkerHealth
from app.logs import get_logger
from app.settings import Settings

log = get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def allowed(authorization: str | None, tokens: list[SecretStr]) -> bool:
    """No METRICS_TOKEN configured: open. Otherwise a matching bearer token is required."""
    if not tokens:
        return True
    return bearer.matching(bearer.presented(authorization), tokens) is not None


# --- the worker's metrics port --------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line."""


class MetricsServer:
    """A worker's metrics endpoint, served from a daemon thread (prometheus-client is
    thread-safe, and the worker's event loop never waits on a scrape)."""

    def __init__(
        self, settings: Settings, host: str, port: int, health: WorkerHealth | None = None
    ) -> None:
        self._tokens = list(settings.metrics_token)
        self._health = health
        self._server = make_server(host, port, self._app, _Server, _QuietHandler)
        self.host = str(self._server.server_address[0])
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if self._health is not None and path in ("/health/live", "/health/ready"):
            # Probes carry no token, and the answer names no secret.
            ok, why = self._health.live() if path == "/health/live" else self._health.ready()
            body = orjson.dumps({"status": "ok" if ok else "down", "detail": why})
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not allowed(environ.get("HTTP_AUTHORIZATION"), self._tokens):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"missing or invalid bearer token\n"]
        body = render()
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]


def start_worker_metrics(
    settings: Settings, *, host: str | None = None, health: WorkerHealth | None = None
) -> MetricsServer | None:
    """Serve this worker process's metrics on WORKER_METRICS_HOST:WORKER_METRICS_PORT (0: off),
    and with `health` its probes, /health/live and /health/ready (app.health.worker).

    Called once from the worker start-up; keep the returned server and `stop()` it on
    shutdown. A port already taken (two workers on one host) is logged, not fatal: metrics
    must never stop a worker from processing events.
    """
    if settings.worker_metrics_port == 0:
        return None
    try:
        server = MetricsServer(
            settings, host or settings.worker_metrics_host, settings.worker_metrics_port, health
        )
    except OSError as exc:
        log.warning("metrics.port_unavailable", port=settings.worker_metrics_port, error=str(exc))
        return None
    server.start()
    log.info("metrics.serving", port=server.port)
    return server
