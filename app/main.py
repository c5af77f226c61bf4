"""The api process: `uvicorn app.main:app` (or `procore-hooks api`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from app.health.router import router as health_router
from app.logs import configure_logging
from app.migrate import head_revision
from app.runtime import open_runtime
from app.settings import Settings, get_settings
from app.webhooks.router import router as webhooks_router
from app.webhooks.service import Ingester

# Every surface of the api, in the order they appear in the OpenAPI schema.
ROUTERS: list[APIRouter] = [webhooks_router, health_router]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        runtime = open_runtime(settings, name="procore-hooks-api")
        ingester = Ingester(runtime)
        ingester.start()
        app.state.runtime = runtime
        app.state.ingester = ingester
        app.state.webhook_tokens = settings.webhook_token_values
        app.state.migration_head = head_revision()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and drained requests: write what they handed in.
            await ingester.stop()
            await runtime.close()

    app = FastAPI(title="procore-hooks", version="0.1.0", lifespan=lifespan)
    for router in ROUTERS:
        app.include_router(router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` builds the app on first access, not at import, so importing this
    # module (tests, tools) never reads the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
