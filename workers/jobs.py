"""Thin arq jobs: take ids, call into app/, assume they may run twice."""

from __future__ import annotations

from typing import Any

from app.delivery import service as delivery
from app.events import dispatch, service
from app.gates import service as gates
from app.resync import service as resync
from app.runtime import Runtime
from app.subscriptions import service as subscriptions


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


async def process_events(ctx: dict[str, Any], event_ids: list[int]) -> int:
    runtime = _runtime(ctx)
    done = await service.process_batch(runtime, event_ids)
    ctx["jobs_done"] = ctx.get("jobs_done", 0) + 1
    if done:
        # The mirror may have changed: destinations hear of it now, not at the next tick.
        await delivery.wake(runtime)
    return done


async def dispatch_due(ctx: dict[str, Any]) -> int:
    return await dispatch.dispatch_once(_runtime(ctx))


async def tend_gates(ctx: dict[str, Any]) -> None:
    await gates.tend(_runtime(ctx))


async def sync_hooks(ctx: dict[str, Any], company_id: int) -> bool:
    report = await subscriptions.sync_company(_runtime(ctx), company_id)
    return report.ok


async def run_resync(ctx: dict[str, Any], run_id: int) -> str | None:
    view = await resync.run(_runtime(ctx), run_id)
    return None if view is None else view.status


async def tend_subscriptions(ctx: dict[str, Any]) -> None:
    await subscriptions.tend(_runtime(ctx))


async def deliver(ctx: dict[str, Any], destination_id: int) -> int:
    return await delivery.deliver(_runtime(ctx), destination_id)


async def tend_deliveries(ctx: dict[str, Any]) -> int:
    return await delivery.tend(_runtime(ctx))
