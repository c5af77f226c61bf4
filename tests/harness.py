"""The shared test harness: the Procore simulator on a real port and its control API, settings
and a runtime pointed at it, real arq workers built from the job registry, the api behind an
in-process transport, Connect as a browser runs it, and waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from arq.worker import Worker

from app.queue import JOB_ENCODING, redis_settings
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimulatorServer
from tests.conftest import make_settings
from workers import settings as worker_settings

GENEROUS_LIMITS = {"hourly": 1_000_000, "spike": 1_000_000}


# Procore requires https destinations (webhooks_api.md); the tests' receivers are local http.
LOCAL_HTTP_HOOKS = {"allow_http_destinations": True}


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer() as server:
        yield server


@pytest.fixture
async def sim(simulator: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's control API, reset to its seed with the rate limits out of the way."""
    async with httpx.AsyncClient(base_url=simulator.base_url, timeout=30.0) as client:
        (await client.post("/_sim/reset")).raise_for_status()
        (await client.put("/_sim/rate_limit", json=GENEROUS_LIMITS)).raise_for_status()
        (await client.put("/_sim/switches", json=LOCAL_HTTP_HOOKS)).raise_for_status()
        yield client


@pytest.fixture
def pipeline_settings(database_url: str, simulator: SimulatorServer) -> Callable[..., Settings]:
    """Settings against the simulator, with short timings; overrides per test."""

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "procore_api_base": simulator.base_url,
            "procore_login_base": simulator.base_url,
            "procore_client_id": DEFAULT_CLIENT_ID,
            "procore_client_secret": DEFAULT_CLIENT_SECRET,
            "public_base_url": "http://testserver",
            "dispatch_interval_seconds": 1,
            "dispatch_lease_seconds": 5.0,
            "processing_lease_seconds": 10.0,
            "retry_base_seconds": 0.05,
            "retry_cap_seconds": 0.3,
            "retry_max_attempts": 4,
            "rate_limit_jitter_seconds": 0.05,
            "procore_timeout_seconds": 5.0,
            "worker_heartbeat_seconds": 60.0,
        }
        values.update(overrides)
        return make_settings(database_url, **values)

    return build


@pytest.fixture
async def prt(
    db: Runtime, pipeline_settings: Callable[..., Settings], redis: Any
) -> AsyncIterator[Runtime]:
    """A fresh runtime against the simulator (empty tables, no cached tokens)."""
    runtime = open_runtime(pipeline_settings(), name="procore-hooks-pipeline-tests")
    yield runtime
    await runtime.close()


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def make_worker(
    settings: Settings, *, max_jobs: int = 10, burst: bool = False, subscriptions: bool = False
) -> Worker:
    """A real arq Worker as WorkerSettings configures it, with the dispatcher every second.

    The hooks-sync and resync jobs are registered; their cron (which hands them out) only with
    `subscriptions`, so other scenarios' call counts are not touched by hook upkeep."""
    return Worker(
        functions=list(worker_settings.JOBS),
        cron_jobs=worker_settings.upkeep_crons(
            settings, every=set(range(60)), subscriptions=subscriptions
        ),
        redis_settings=redis_settings(settings),
        queue_name=settings.queue_name,
        ctx={"settings": settings},
        on_startup=worker_settings.startup,
        on_shutdown=worker_settings.shutdown,
        max_jobs=max_jobs,
        keep_result=5,
        poll_delay=0.05,
        handle_signals=False,
        burst=burst,
        **JOB_ENCODING,
    )


@dataclass(slots=True)
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop polling; let in-flight jobs finish (graceful) or cancel them mid-batch (a
        killed worker: its rows stay `processing` until their lease runs out)."""
        if graceful:
            # arq's burst mode with no jobs left to start: the poll loop ends by itself once
            # the jobs in flight are done (cancelling it mid-pipeline would leak a connection).
            self.worker.max_burst_jobs = 0
            self.worker.burst = True
            await asyncio.wait([self.task], timeout=30)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        pending = [t for t in self.worker.tasks.values() if not t.done()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.worker.tasks.clear()
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis' deprecated close().
            warnings.simplefilter("ignore", DeprecationWarning)
            await self.worker.close()


def start_worker(settings: Settings, **kwargs: Any) -> RunningWorker:
    worker = make_worker(settings, **kwargs)
    return RunningWorker(worker, asyncio.create_task(worker.async_run()))


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, **kwargs: Any) -> AsyncIterator[RunningWorker]:
    running = start_worker(settings, **kwargs)
    try:
        yield running
    finally:
        if not running.task.done() or running.worker.tasks:
            await running.stop()


async def sim_calls(sim: httpx.AsyncClient, **params: int) -> dict[str, Any]:
    answer = await sim.get("/_sim/calls", params=params)
    answer.raise_for_status()
    calls: dict[str, Any] = answer.json()
    return calls


async def sim_stats(sim: httpx.AsyncClient) -> dict[str, Any]:
    answer = await sim.get("/_sim/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The api app (lifespan and all) behind an in-process transport."""
    from app.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def connect_user(
    runtime: Runtime, sim: httpx.AsyncClient, company_id: int | None = 31
) -> httpx.Response:
    """Run Connect-to-Procore as a browser would: issued link → authorize → callback."""
    from app.connect.service import issue_connect_link

    async with runtime.sessions() as session, session.begin():
        link = await issue_connect_link(session, runtime.settings, company_id, issued_by="test")
    async with api_client(runtime.settings) as api:
        started = await api.get(link)
        assert started.status_code == 302, started.text
        authorized = await sim.get(started.headers["location"])
        assert authorized.status_code == 302, authorized.text
        return await api.get(authorized.headers["location"])
