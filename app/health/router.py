"""Liveness, readiness and the monitoring view.

Readiness depends on Postgres alone: a webhook can be stored whenever Postgres answers, so Redis
or the workers being down must not take replicas out of the load balancer (Procore would pause
every delivery). `/health` reports every component for monitoring.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.health import heartbeat
from app.migrate import current_revision
from app.runtime import Runtime, runtime_of

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT = 2.0

# Due: waiting (queued/retrying) or abandoned (processing past its lease); a row a worker is
# processing right now is not waiting.
_QUEUE = text(
    """
    SELECT count(*) AS depth,
           extract(epoch FROM now() - min(next_attempt_at)) AS oldest_due_seconds
    FROM events
    WHERE status IN ('queued', 'retrying', 'processing') AND next_attempt_at <= now()
      AND (status <> 'processing' OR locked_until < now())
    """
)
_PARKED = text(
    """
    SELECT (SELECT count(*) FROM gates WHERE state = 'parked') AS parked_gates,
           (SELECT count(*) FROM events WHERE status = 'parked') AS parked_events
    """
)


def _json(status: int, content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _documented(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    schema = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "components": {"type": "object", "additionalProperties": {"type": "object"}},
            "problems": {"type": "object", "additionalProperties": {"type": "string"}},
            "database": {"type": "object"},
        },
        "required": ["status"],
    }
    return {
        status: {"description": what, "content": {"application/json": {"schema": schema}}}
        for status, what in statuses
    }


@router.get(
    "/health/live",
    summary="Liveness: the process answers",
    responses=_documented((200, "The process answers")),
)
async def live() -> Response:
    return _json(200, {"status": "ok"})


@router.get(
    "/health/ready",
    summary="Readiness: Postgres reachable, so webhooks can be stored",
    responses=_documented((200, "Ready"), (503, "Postgres unreachable: not ready")),
)
async def ready(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        await asyncio.wait_for(_ping_database(runtime), _CHECK_TIMEOUT)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return _json(503, {"status": "down", "database": {"status": "down", "error": str(exc)}})
    return _json(200, {"status": "ok"})


@router.get(
    "/health",
    summary="Every component, for monitoring (503 names what is wrong)",
    responses=_documented(
        (200, "Every component is well"), (503, "A component is down or degraded (`problems`)")
    ),
)
async def health(request: Request) -> Response:
    runtime = runtime_of(request)
    components: dict[str, dict[str, Any]] = {}
    components["database"] = await _check(_database(runtime))
    components["redis"] = await _check(_redis(runtime))
    if components["database"]["status"] == "ok":
        components["migrations"] = await _check(_migrations(runtime, request.app.state))
        components["workers"] = await _check(_workers(runtime))
        components["queue"] = await _check(_queue(runtime))
        components["gates"] = await _check(_gates(runtime))
    problems = {name: c["status"] for name, c in components.items() if c["status"] != "ok"}
    status = "ok" if not problems else ("down" if "down" in problems.values() else "degraded")
    body: dict[str, Any] = {"status": status, "components": components}
    if problems:
        body["problems"] = problems
    return _json(200 if status == "ok" else 503, body)


async def _check(probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = await asyncio.wait_for(probe, _CHECK_TIMEOUT)
    except (SQLAlchemyError, RedisError, OSError, TimeoutError) as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result.setdefault("status", "ok")
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


async def _ping_database(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _database(runtime: Runtime) -> dict[str, Any]:
    await _ping_database(runtime)
    return {}


async def _redis(runtime: Runtime) -> dict[str, Any]:
    await runtime.queue.ping()
    return {}


async def _migrations(runtime: Runtime, state: Any) -> dict[str, Any]:
    async with runtime.engine.connect() as conn:
        current = await current_revision(conn)
    head: str = state.migration_head
    if current != head:
        return {"status": "degraded", "current": current, "head": head}
    return {"current": current, "head": head}


async def _workers(runtime: Runtime) -> dict[str, Any]:
    async with runtime.sessions() as session:
        age = await heartbeat.newest_beat_age(session)
    stale = runtime.settings.worker_stale_seconds
    if age is None:
        return {"status": "down", "error": "no worker heartbeat"}
    if age > stale:
        return {"status": "down", "error": f"newest heartbeat {age:.0f}s old", "age_s": age}
    return {"newest_heartbeat_age_s": round(age, 1)}


async def _queue(runtime: Runtime) -> dict[str, Any]:
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(_QUEUE)).one()
    depth, oldest = int(row.depth), float(row.oldest_due_seconds or 0.0)
    result: dict[str, Any] = {"depth": depth, "oldest_due_age_s": round(oldest, 1)}
    settings = runtime.settings
    reasons = []
    if depth > settings.health_queue_depth_degraded:
        reasons.append(f"{depth} events due (threshold {settings.health_queue_depth_degraded})")
    if oldest > settings.health_oldest_due_degraded_seconds:
        reasons.append(
            f"oldest due event waits {oldest:.0f}s "
            f"(threshold {settings.health_oldest_due_degraded_seconds:.0f}s)"
        )
    if reasons:
        result.update(status="degraded", reason="; ".join(reasons))
    return result


async def _gates(runtime: Runtime) -> dict[str, Any]:
    # Parked gates are the service working as designed (an uninstalled company), not a fault:
    # reported for monitoring and alerting, they do not fail the health check.
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(_PARKED)).one()
    return {"parked_gates": int(row.parked_gates), "parked_events": int(row.parked_events)}
