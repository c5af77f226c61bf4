"""Process-wide resources with one lifetime: one engine, one queue pool, one HTTP client.

The api lifespan and the worker start-up both open a Runtime and close it on shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import SessionFactory, create_engine, create_session_factory
from app.queue import create_queue_pool
from app.settings import Settings

USER_AGENT = "procore-hooks/0.1 (+https://github.com/procore-hooks)"


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    queue: ArqRedis
    http: httpx.AsyncClient

    async def close(self) -> None:
        await self.http.aclose()
        await self.queue.aclose(close_connection_pool=True)
        await self.engine.dispose()


def create_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": USER_AGENT},
    )


def open_runtime(settings: Settings, *, name: str) -> Runtime:
    engine = create_engine(settings, application_name=name)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        queue=create_queue_pool(settings),
        http=create_http_client(),
    )
