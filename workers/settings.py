"""arq WorkerSettings: `arq workers.settings.WorkerSettings` or `procore-hooks worker`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.exc import SQLAlchemyError

from app.health import heartbeat
from app.logs import configure_logging, get_logger
from app.metrics.exposition import start_worker_metrics
from app.queue import deserialize_job, redis_settings, serialize_job
from app.runtime import open_runtime
from app.settings import Settings, get_settings
from workers import jobs

log = get_logger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    # Tests and the CLI may pass their own Settings in ctx; otherwise read the environment.
    settings: Settings = ctx.setdefault("settings", get_settings())
    configure_logging(settings)
    ctx["runtime"] = open_runtime(settings, name="procore-hooks-worker")
    ctx["worker"] = identity = heartbeat.WorkerIdentity()
    ctx["jobs_done"] = 0
    ctx["heartbeat_task"] = asyncio.create_task(_beat_forever(ctx))
    ctx["metrics_server"] = start_worker_metrics(settings)
    log.info("worker.started", worker_id=identity.worker_id)


async def shutdown(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.get("heartbeat_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    metrics_server = ctx.get("metrics_server")
    if metrics_server is not None:
        metrics_server.stop()
    runtime = ctx.get("runtime")
    if runtime is not None:
        with contextlib.suppress(SQLAlchemyError, OSError):
            async with runtime.sessions() as session, session.begin():
                await heartbeat.forget(session, ctx["worker"])
        await runtime.close()
    log.info("worker.stopped")


async def _beat_forever(ctx: dict[str, Any]) -> None:
    runtime = ctx["runtime"]
    while True:
        try:
            async with runtime.sessions() as session, session.begin():
                await heartbeat.beat(session, ctx["worker"], ctx["jobs_done"])
        except (SQLAlchemyError, OSError) as exc:
            log.warning("worker.heartbeat_failed", error=str(exc))
        await asyncio.sleep(runtime.settings.worker_heartbeat_seconds)


def _dispatch_seconds(settings: Settings) -> set[int]:
    return set(range(0, 60, settings.dispatch_interval_seconds))


# Periodic upkeep, each run on one worker per tick (`unique`), named per queue so that two
# deployments sharing a Redis do not take each other's ticks. (name, job, timeout in seconds)
_UPKEEP: tuple[tuple[str, WorkerCoroutine, int], ...] = (
    # due rows → the queue, fairly across companies
    ("dispatch_due", jobs.dispatch_due, 60),
    # probes, release of opened gates, expiry of old parked events
    ("tend_gates", jobs.tend_gates, 90),
    # hooks kept in step, due resyncs handed out
    ("tend_subscriptions", jobs.tend_subscriptions, 120),
)


def upkeep_crons(
    settings: Settings, *, every: set[int] | None = None, subscriptions: bool = True
) -> list[CronJob]:
    seconds = every if every is not None else _dispatch_seconds(settings)
    return [
        cron(
            job,
            name=f"cron:{settings.queue_name}:{name}",
            second=seconds,
            run_at_startup=True,
            unique=True,
            timeout=timeout,
        )
        for name, job, timeout in _UPKEEP
        if subscriptions or name != "tend_subscriptions"
    ]


_settings = get_settings()


class WorkerSettings:
    functions: ClassVar[list[WorkerCoroutine]] = [
        jobs.process_events,
        jobs.sync_hooks,
        jobs.run_resync,
    ]
    cron_jobs: ClassVar[list[CronJob]] = upkeep_crons(_settings)
    on_startup = startup
    on_shutdown = shutdown
    redis_settings: ClassVar[RedisSettings] = redis_settings(_settings)
    # Jobs are JSON, never pickles (app.queue): writing to Redis must not mean running code.
    job_serializer = staticmethod(serialize_job)
    job_deserializer = staticmethod(deserialize_job)
    queue_name: ClassVar[str] = _settings.queue_name
    max_jobs: ClassVar[int] = _settings.worker_max_jobs
    # Short timeouts: a SIGKILLed worker's jobs stay "in progress" in Redis for the job timeout
    # (+10 s), and the leases in Postgres already make their events due again sooner.
    job_timeout: ClassVar[int] = 90
    # Read past jobs orphaned by a killed worker at the head of the queue.
    queue_read_limit: ClassVar[int] = 1000
    # Results are not read by anyone; keep them briefly so arq's job-id memory stays small.
    keep_result: ClassVar[int] = 60
    max_tries: ClassVar[int] = 3
    health_check_interval: ClassVar[int] = 30
