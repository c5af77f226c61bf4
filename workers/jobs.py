"""Thin arq jobs: take ids, call into app/, assume they may run twice."""

from __future__ import annotations

from typing import Any

from app.events import dispatch, service
from app.gates import service as gates
from app.runtime import Runtime


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


async def process_events(ctx: dict[str, Any], event_ids: list[int]) -> int:
    done = await service.process_batch(_runtime(ctx), event_ids)
    ctx["jobs_done"] = ctx.get("jobs_done", 0) + 1
    return done


async def dispatch_due(ctx: dict[str, Any]) -> int:
    return await dispatch.dispatch_once(_runtime(ctx))


async def tend_gates(ctx: dict[str, Any]) -> None:
    await gates.tend(_runtime(ctx))
