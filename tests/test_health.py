"""Health endpoints: liveness, readiness (Postgres only), and the monitoring view."""

from __future__ import annotations

import gc

import httpx
from arq.connections import ArqRedis

from app.health import heartbeat
from app.main import create_app
from app.models import Event, EventStatus
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import make_settings


async def beat(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await heartbeat.beat(session, heartbeat.WorkerIdentity(), jobs_done=0)


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).status_code == 200


async def test_health_ok_when_every_component_is(client: httpx.AsyncClient, db: Runtime) -> None:
    await beat(db)
    response = await client.get("/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    components = body["components"]
    assert components["migrations"]["current"] == components["migrations"]["head"]
    assert components["queue"]["depth"] == 0
    assert components["workers"]["status"] == "ok"
    assert components["gates"] == {**components["gates"], "parked_gates": 0, "parked_events": 0}


async def test_health_names_missing_workers(client: httpx.AsyncClient, db: Runtime) -> None:
    response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["problems"] == {"workers": "down"}
    assert body["components"]["workers"]["error"] == "no worker heartbeat"


async def test_redis_down_fails_health_but_not_readiness(
    settings: Settings, db: Runtime, redis: ArqRedis
) -> None:
    await beat(db)
    app = create_app(make_settings(settings.database_url, redis_url="redis://127.0.0.1:1/0"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/health/ready")
            health = await client.get("/health")
    assert ready.status_code == 200
    assert health.status_code == 503
    assert health.json()["problems"] == {"redis": "down"}


async def test_queue_backlog_degrades_health_with_the_reason(
    settings: Settings, db: Runtime
) -> None:
    await beat(db)
    async with db.sessions() as session, session.begin():
        for i in range(3):
            session.add(
                Event(
                    dedupe_key=f"K{i}",
                    payload_version="v2",
                    company_id=1,
                    raw={},
                    status=EventStatus.QUEUED,
                )
            )
    app = create_app(make_settings(settings.database_url, health_queue_depth_degraded=2))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            health = await client.get("/health")
    body = health.json()
    assert health.status_code == 503
    assert body["status"] == "degraded"
    assert body["components"]["queue"]["depth"] == 3
    assert "3 events due (threshold 2)" in body["components"]["queue"]["reason"]


async def test_api_start_up_freezes_its_heap_out_of_the_collector(settings: Settings) -> None:
    frozen_before = gc.get_freeze_count()
    app = create_app(make_settings(settings.database_url, api_gc_freeze=True))
    try:
        async with app.router.lifespan_context(app):
            # Start-up objects (modules, routes, the runtime) are no longer tracked by
            # collections; later allocations are.
            assert gc.get_freeze_count() > frozen_before
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # the rest of the test process is not an api
