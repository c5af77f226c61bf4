"""The api process: `uvicorn app.main:app` (or `procore-hooks api`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app import docs
from app.admin.destinations import router as destinations_router
from app.admin.jobs import router as jobs_router
from app.admin.router import router as admin_router
from app.connect.router import router as connect_router
from app.health.router import router as health_router
from app.logs import configure_logging
from app.metrics.router import router as metrics_router
from app.migrate import head_revision
from app.runtime import open_runtime
from app.settings import Settings, get_settings
from app.setup.router import router as setup_router
from app.webhooks.router import OPENAPI_PATH, PROBLEM_SCHEMA, WEBHOOK_PATH, WebhookEndpoint
from app.webhooks.service import Ingester

# Every FastAPI surface of the api, in the order they appear in the OpenAPI schema.
ROUTERS: list[APIRouter] = [
    health_router,
    connect_router,
    admin_router,
    jobs_router,
    destinations_router,
    metrics_router,
    setup_router,
]


class ServiceApp(FastAPI):
    """FastAPI, with Procore's deliveries handed straight to their lean endpoint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == WEBHOOK_PATH
            and scope["method"] == "POST"
            and hasattr(self.state, "webhook_endpoint")
        ):
            await self.state.webhook_endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {WEBHOOK_PATH: OPENAPI_PATH, **schema.get("paths", {})}
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        runtime = open_runtime(settings, name="procore-hooks-api")
        ingester = Ingester(runtime)
        ingester.start()
        app.state.runtime = runtime
        app.state.ingester = ingester
        app.state.webhook_endpoint = WebhookEndpoint(settings, ingester)
        app.state.migration_head = head_revision()
        if settings.api_gc_freeze:
            # Everything built at start-up lives as long as the process: out of the
            # collector's way, so full collections under load walk only what requests allocate.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained requests: write what they handed in.
            await ingester.stop()
            await runtime.close()

    app = ServiceApp(
        title="procore-hooks",
        version="0.1.0",
        summary="Install-aware Procore webhook receiver and sync workers",
        lifespan=lifespan,
        # /docs is served from the service's own files (app.docs), never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    for router in ROUTERS:
        app.include_router(router)
    docs.install(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 with the errors, as FastAPI answers, but safe for bodies that are not UTF-8 (the
    default handler echoes the raw bytes and fails on them with a 500), and for strings holding
    lone surrogates (valid JSON escapes that cannot be encoded as UTF-8 again)."""
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(
        exc.errors(),
        custom_encoder={
            bytes: lambda raw: raw.decode("utf-8", "replace"),
            str: lambda text: text.encode("utf-8", "replace").decode("utf-8"),
        },
    )
    return JSONResponse({"detail": errors}, status_code=422)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` builds the app on first access, not at import, so importing this
    # module (tests, tools) never reads the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
