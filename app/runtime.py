"""Process-wide resources with one lifetime: one engine, one queue pool, one HTTP client.

The api lifespan and the worker start-up both open a Runtime and close it on shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.crypto import Vault
from app.db import SessionFactory, create_engine, create_session_factory
from app.gates.guard import CompanyGuard
from app.procore.budget import RateBudget
from app.procore.client import ProcoreClient
from app.procore.tokens import TokenService
from app.procore.transport import AiohttpTransport
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
    vault: Vault
    # The Procore client: tokens (single-flight renewal) and the shared rate budget in Redis.
    procore: ProcoreClient
    # Slow start and hold per company in this process, until the gates take over.
    guard: CompanyGuard
    # Deliveries to destinations: a client of its own (no redirects, no proxies from the
    # environment, the delivery timeout), never shared with calls to Procore.
    outbound: httpx.AsyncClient

    async def close(self) -> None:
        await self.procore.budget.close()
        await self.http.aclose()
        await self.outbound.aclose()
        await self.queue.aclose(close_connection_pool=True)
        await self.engine.dispose()


def create_http_client(wire: AiohttpTransport | None = None) -> httpx.AsyncClient:
    """The client of the calls to Procore, over aiohttp's wire (app.procore.transport)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0),
        transport=wire or create_wire(),
        headers={"User-Agent": USER_AGENT},
    )


def create_wire() -> AiohttpTransport:
    # Keep-alive for as many connections as the Procore client lets fly at once
    # (PROCORE_MAX_IN_FLIGHT): closing and reopening them costs more than the call.
    return AiohttpTransport(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))


def create_outbound_client(timeout_s: float) -> httpx.AsyncClient:
    """For deliveries to destinations (app.delivery): no redirects, no proxies from the
    environment, its own pool and timeout."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        headers={"User-Agent": "procore-hooks-delivery/0.1"},
    )


def open_runtime(settings: Settings, *, name: str) -> Runtime:
    engine = create_engine(settings, application_name=name)
    queue = create_queue_pool(settings)
    wire = create_wire()
    http = create_http_client(wire)
    vault = Vault(settings.encryption_key)
    procore = ProcoreClient(
        http=http,
        wire=wire,
        settings=settings,
        tokens=TokenService(engine=engine, http=http, settings=settings, vault=vault),
        budget=RateBudget(
            queue,
            prefix=settings.queue_name,
            initial_burst=settings.rate_limit_initial_burst,
        ),
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        queue=queue,
        http=http,
        vault=vault,
        procore=procore,
        guard=CompanyGuard(threshold=settings.park_threshold),
        outbound=create_outbound_client(settings.delivery_timeout_seconds),
    )


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The api process's Runtime, as its lifespan (app.main) set it: the one typed way in."""
    runtime = connection.app.state.runtime
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the api's lifespan has not opened a Runtime")
    return runtime
