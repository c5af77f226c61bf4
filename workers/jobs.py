"""Thin arq jobs: take ids, call into app/, assume they may run twice.

Every log line a job writes carries its `job_id` and `job_try` (structlog context)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from structlog.contextvars import bound_contextvars

from app.delivery import service as delivery
from app.events import dispatch, retention, service
from app.gates import service as gates
from app.logs import get_logger
from app.procore import calls
from app.resync import service as resync
from app.runtime import Runtime
from app.subscriptions import service as subscriptions
from app.writes import lanes, runner

log = get_logger(__name__)


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


def _job(ctx: dict[str, Any], **ids: int) -> Any:
    return bound_contextvars(job_id=ctx.get("job_id"), job_try=ctx.get("job_try"), **ids)


async def process_events(ctx: dict[str, Any], event_ids: list[int]) -> int:
    runtime = _runtime(ctx)
    with _job(ctx):
        done = await service.process_batch(runtime, event_ids)
        if done:
            # The mirror may have changed: destinations hear of it now, not at the next tick.
            await delivery.wake(runtime)
    ctx["jobs_done"] = ctx.get("jobs_done", 0) + 1
    return done


async def dispatch_due(ctx: dict[str, Any]) -> int:
    return await dispatch.dispatch_once(_runtime(ctx))


async def tend_gates(ctx: dict[str, Any]) -> None:
    await gates.tend(_runtime(ctx))


async def prune_history(ctx: dict[str, Any]) -> None:
    """Finished events, then the call audit: a failure of one does not keep the other."""
    runtime = _runtime(ctx)
    try:
        await retention.purge_finished(runtime)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("events.purge_failed", error=str(exc)[:200])
    try:
        await calls.prune_calls(
            runtime.sessions, retention_days=runtime.settings.procore_calls_retention_days
        )
    except (SQLAlchemyError, OSError) as exc:
        log.warning("procore_calls.prune_failed", error=str(exc)[:200])


async def sync_hooks(ctx: dict[str, Any], company_id: int) -> bool:
    with _job(ctx, company_id=company_id):
        report = await subscriptions.sync_company(_runtime(ctx), company_id)
    return report.ok


async def run_resync(ctx: dict[str, Any], run_id: int) -> str | None:
    with _job(ctx, run_id=run_id):
        view = await resync.run(_runtime(ctx), run_id)
    return None if view is None else view.status


async def tend_subscriptions(ctx: dict[str, Any]) -> None:
    await subscriptions.tend(_runtime(ctx))


async def run_writes(ctx: dict[str, Any], company_id: int) -> int:
    with _job(ctx, company_id=company_id):
        finished = await runner.run_lane(_runtime(ctx), company_id)
    ctx["jobs_done"] = ctx.get("jobs_done", 0) + 1
    return finished


async def tend_writes(ctx: dict[str, Any]) -> None:
    await lanes.tend(_runtime(ctx))


async def deliver(ctx: dict[str, Any], destination_id: int) -> int:
    with _job(ctx, destination_id=destination_id):
        return await delivery.deliver(_runtime(ctx), destination_id)


async def tend_deliveries(ctx: dict[str, Any]) -> int:
    runtime = _runtime(ctx)
    return await delivery.tend(runtime)
