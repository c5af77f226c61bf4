"""The api process: `uvicorn app.main:app` (or `procore-hooks api`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from app.logs import configure_logging
from app.runtime import open_runtime
from app.settings import Settings, get_settings

# Every surface of the api, in the order they appear in the OpenAPI schema.
ROUTERS: list[APIRouter] = []


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        runtime = open_runtime(settings, name="procore-hooks-api")
        app.state.runtime = runtime
        try:
            yield
        finally:
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
