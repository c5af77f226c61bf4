"""The api process: `uvicorn app.main:app` (or `procore-hooks api`)."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app import bodies, docs
from app.admin import jobs as jobs_api
from app.admin.destinations import router as destinations_router
from app.admin.jobs import router as jobs_router
from app.admin.router import admin_actor
from app.admin.router import router as admin_router
from app.health.router import router as health_router
from app.logs import configure_logging, redact_server_logs
from app.metrics.router import router as metrics_router
from app.migrate import head_revision
from app.runtime import open_runtime
from app.settings import AppEnv, Settings, get_settings
from app.setup.connect import router as connect_router
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


_GC_YOUNG_THRESHOLD = 10_000


class ServiceApp(FastAPI):
    """FastAPI, with Procore's deliveries handed straight to their lean endpoint."""

    # Every other route's body cap and read deadline (API_MAX_BODY_BYTES,
    # BODY_READ_TIMEOUT_SECONDS), set by create_app.
    body_limit: int = 64 * 1024
    body_timeout: float = 10.0
    # Routes whose bodies may be larger (the write jobs' submissions), by exact path.
    body_limits: Mapping[str, int] = MappingProxyType({})
    # POST /webhooks/procore, served before the framework (set by the lifespan).
    webhook_endpoint: WebhookEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.webhook_endpoint
            if endpoint is not None and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
                await endpoint(scope, receive, send)
                return
            # Bounded before routing, parsing or authentication see a byte of it.
            limit = self.body_limits.get(scope["path"], self.body_limit)
            bounded = await bodies.buffered(
                scope, receive, send, limit=limit, within=self.body_timeout
            )
            if bounded is None:
                return
            receive = bounded
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            schema["paths"] = {WEBHOOK_PATH: OPENAPI_PATH, **schema.get("paths", {})}
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _document_edge_answers(path, operation)
            self.openapi_schema = schema
        return self.openapi_schema


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _document_edge_answers(path: str, operation: dict[str, Any]) -> None:
    """The answers every route can give before its own code runs (the body bounds, and
    FastAPI's refusal of a body it cannot decode), in every operation of the schema."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.setdefault("408", _problem("Body not received within BODY_READ_TIMEOUT_SECONDS"))
    limit = "WEBHOOK_MAX_BODY_BYTES" if path == WEBHOOK_PATH else "API_MAX_BODY_BYTES"
    responses.setdefault("413", _problem(f"Body larger than {limit}"))
    if "requestBody" in operation:
        responses.setdefault("400", _problem("Body that cannot be decoded"))


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or get_settings()
    # However the api is started, the server's access log never quotes a signed query value.
    redact_server_logs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        runtime = open_runtime(settings, name="procore-hooks-api")
        ingester = Ingester(runtime)
        ingester.start()
        app.state.runtime = runtime
        app.state.ingester = ingester
        endpoint = WebhookEndpoint(settings, ingester)
        endpoint.start()
        if isinstance(app, ServiceApp):
            app.webhook_endpoint = endpoint
        app.state.migration_head = head_revision()
        if settings.api_gc_freeze:
            # Everything built at start-up lives as long as the process: out of the
            # collector's way, so full collections under load walk only what requests allocate.
            gc.collect()
            gc.freeze()
            # The youngest generation is collected after this many new container objects, not
            # 700: the requests in flight alone hold more than that, so under load the default
            # collects every few requests and finds nothing (their objects die by refcount).
            gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained requests: write what they handed in.
            await endpoint.stop()
            await ingester.stop()
            await runtime.close()

    production = settings.app_env is AppEnv.PRODUCTION
    app = ServiceApp(
        title="procore-hooks",
        version="0.1.0",
        summary="Install-aware Procore webhook receiver and sync workers",
        lifespan=lifespan,
        # In production the schema is served to admins only, and the docs page not at all;
        # elsewhere /docs is served from the service's own files (app.docs), never a CDN.
        openapi_url=None if production else "/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    if production:
        app.add_api_route(
            "/openapi.json",
            _admin_openapi,
            methods=["GET"],
            include_in_schema=False,
            dependencies=[Depends(admin_actor)],
        )
    app.body_limit = settings.api_max_body_bytes
    app.body_limits = jobs_api.body_caps(settings)
    app.body_timeout = settings.body_read_timeout_seconds
    for router in ROUTERS:
        app.include_router(router)
    if not production:
        docs.install(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(405, _method_not_allowed)
    return app


async def _admin_openapi(request: Request) -> Response:
    app: FastAPI = request.app
    return JSONResponse(app.openapi())


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 naming every method of the path, as the schema documents them (the router names
    only those of the first route it matched when a path has several)."""
    app: FastAPI = request.app
    path = request.url.path
    paths: dict[str, dict[str, Any]] = app.openapi().get("paths", {})
    # A literal path wins over a template that would also match it (replay vs {event_id}).
    matching = (
        [path]
        if path in paths
        else [
            template
            for template in paths
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path)
        ]
    )
    allowed = sorted({method.upper() for template in matching for method in paths[template]})
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 with the errors, as FastAPI answers, but bounded, and safe for bodies that are not
    UTF-8 (the default handler echoes the raw bytes and fails on them with a 500) and for
    strings holding lone surrogates (valid JSON escapes, not encodable as UTF-8 again: a key
    of the body in `loc`)."""
    assert isinstance(exc, RequestValidationError)
    # A body of thousands of wrong items would otherwise be answered with thousands of errors,
    # each echoing its input: the first few, without the input, say what is wrong.
    errors = [
        {key: value for key, value in error.items() if key != "input"}
        for error in exc.errors()[:_MAX_ERRORS]
    ]
    encoded = jsonable_encoder(
        errors,
        custom_encoder={
            bytes: lambda raw: raw.decode("utf-8", "replace"),
            str: lambda text: text.encode("utf-8", "replace").decode("utf-8"),
        },
    )
    return JSONResponse({"detail": encoded}, status_code=422)


_MAX_ERRORS = 20


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` builds the app on first access, not at import, so importing this
    # module (tests, tools) never reads the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
