"""arq WorkerSettings, and the worker that `procore-hooks worker` runs over them.

`procore-hooks worker` (`run()` below) rides out a Redis outage: it waits for Redis at start-up
and when Redis drops, reconnects, and goes on, where arq's own worker exits (`arq
workers.settings.WorkerSettings` still works, leaving recovery to a restart policy). Postgres
holds the work meanwhile (DESIGN.md, Scheduling): nothing is lost, only delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings, create_pool
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func, get_kwargs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from sqlalchemy.exc import SQLAlchemyError

from app.db import PRUNE_EVERY_S
from app.health import heartbeat
from app.health.worker import WorkerHealth
from app.logs import configure_logging, get_logger
from app.metrics.exposition import start_worker_metrics
from app.procore.backoff import full_jitter
from app.queue import (
    DELIVER,
    PROCESS_EVENTS,
    RUN_RESYNC,
    RUN_WRITES,
    SYNC_HOOKS,
    deserialize_job,
    redis_settings,
    serialize_job,
)
from app.runtime import open_runtime
from app.settings import Settings, get_settings
from workers import jobs

log = get_logger(__name__)


def serve_probes(ctx: dict[str, Any]) -> WorkerHealth:
    """The metrics port with /health/live and /health/ready, once per process: before Redis
    first answers (the reconnecting worker calls it then) or else at start-up."""
    health: WorkerHealth | None = ctx.get("health")
    if health is not None:
        return health
    # Tests and the CLI may pass their own Settings in ctx; otherwise read the environment.
    settings: Settings = ctx.setdefault("settings", get_settings())
    configure_logging(settings)
    ctx["health"] = health = WorkerHealth(stale_seconds=settings.worker_stale_seconds)
    ctx["tick_task"] = asyncio.create_task(_tick_forever(health))
    ctx["metrics_server"] = start_worker_metrics(settings, health=health)
    return health


async def stop_probes(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.pop("tick_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    metrics_server = ctx.pop("metrics_server", None)
    if metrics_server is not None:
        metrics_server.stop()


async def startup(ctx: dict[str, Any]) -> None:
    serve_probes(ctx)
    settings: Settings = ctx["settings"]
    ctx["runtime"] = open_runtime(settings, name="procore-hooks-worker")
    ctx["worker"] = identity = heartbeat.WorkerIdentity()
    ctx["jobs_done"] = 0
    ctx["heartbeat_task"] = asyncio.create_task(_beat_forever(ctx))
    log.info("worker.started", worker_id=identity.worker_id)


async def shutdown(ctx: dict[str, Any]) -> None:
    task: asyncio.Task[None] | None = ctx.get("heartbeat_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await stop_probes(ctx)
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
            ctx["health"].beat()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("worker.heartbeat_failed", error=str(exc))
        await asyncio.sleep(runtime.settings.worker_heartbeat_seconds)


async def _tick_forever(health: WorkerHealth) -> None:
    """Proof for /health/live that the event loop turns (whatever Postgres and Redis do)."""
    while True:
        health.tick()
        await asyncio.sleep(1.0)


# Periodic upkeep, each run on one worker per tick (`unique`), named per queue so that two
# deployments sharing a Redis do not take each other's ticks. (name, job, timeout in seconds,
# seconds between runs: None for every DISPATCH_INTERVAL_SECONDS)
_UPKEEP: tuple[tuple[str, WorkerCoroutine, int, int | None], ...] = (
    # due rows → the queue, fairly across companies
    ("dispatch_due", jobs.dispatch_due, 60, None),
    # probes, release of opened gates, expiry of old parked events
    ("tend_gates", jobs.tend_gates, 90, None),
    # hooks kept in step, due resyncs handed out
    ("tend_subscriptions", jobs.tend_subscriptions, 120, None),
    # write jobs: parked ones released when their gates open, due lanes handed out
    ("tend_writes", jobs.tend_writes, 60, None),
    # destinations' retries, probes and anything left behind; old attempts pruned
    ("tend_deliveries", jobs.tend_deliveries, 60, None),
    # finished events and the call audit past their retention deleted: at most
    # PRUNE_BATCHES_PER_RUN transactions of PRUNE_BATCH rows of each every PRUNE_EVERY_S
    ("prune_history", jobs.prune_history, 60, PRUNE_EVERY_S),
)


def upkeep_crons(
    settings: Settings, *, every: set[int] | None = None, subscriptions: bool = True
) -> list[CronJob]:
    def schedule(interval: int | None) -> set[int]:
        if every is not None:
            return every
        return set(range(0, 60, interval or settings.dispatch_interval_seconds))

    return [
        cron(
            job,
            name=f"cron:{settings.queue_name}:{name}",
            second=schedule(interval),
            run_at_startup=True,
            unique=True,
            timeout=timeout,
        )
        for name, job, timeout, interval in _UPKEEP
        if subscriptions or name != "tend_subscriptions"
    ]


_settings = get_settings()


# Every job, under its name in app.queue (what the api and the upkeep enqueue).
JOBS: tuple[Function, ...] = (
    func(jobs.process_events, name=PROCESS_EVENTS),
    func(jobs.sync_hooks, name=SYNC_HOOKS),
    func(jobs.run_resync, name=RUN_RESYNC),
    func(jobs.run_writes, name=RUN_WRITES),
    # No result kept: its wake-up id must be free again as soon as it ends (app.queue).
    func(jobs.deliver, name=DELIVER, keep_result=0),
)


class WorkerSettings:
    functions: ClassVar[list[Function]] = list(JOBS)
    cron_jobs: ClassVar[list[CronJob]] = upkeep_crons(_settings)
    on_startup = startup
    on_shutdown = shutdown
    redis_settings: ClassVar[RedisSettings] = redis_settings(_settings)
    # Jobs are JSON, never pickles (app.queue): writing to Redis must not mean running code.
    job_serializer = staticmethod(serialize_job)
    job_deserializer = staticmethod(deserialize_job)
    queue_name: ClassVar[str] = _settings.queue_name
    max_jobs: ClassVar[int] = _settings.worker_max_jobs
    poll_delay: ClassVar[float] = _settings.worker_poll_seconds
    # Short timeouts: a SIGKILLed worker's jobs stay "in progress" in Redis for the job timeout
    # (+10 s), and the leases in Postgres already make their events due again sooner.
    job_timeout: ClassVar[int] = 90
    # Read past jobs orphaned by a killed worker at the head of the queue.
    queue_read_limit: ClassVar[int] = 1000
    # Results are not read by anyone; keep them briefly so arq's job-id memory stays small.
    keep_result: ClassVar[int] = 60
    max_tries: ClassVar[int] = 3
    health_check_interval: ClassVar[int] = 30


# What a Redis that is down, restarting or unreachable raises (BusyLoadingError, while a
# restarted Redis loads, is a ConnectionError).
REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    asyncio.TimeoutError,
)
# Between two attempts to reach Redis: full jitter under 0.5 s, 1 s, 2 s ... capped at 10 s.
RECONNECT_BASE_SECONDS, RECONNECT_CAP_SECONDS = 0.5, 10.0


class ReconnectingWorker(Worker):
    """arq's Worker, which keeps going when Redis does not answer instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_failures = 0
        self._redis_down_since: float | None = None
        self._rng = random.Random()

    async def main(self) -> None:
        serve_probes(self.ctx)  # live while it waits for Redis; ready once work can run
        while self._pool is None:
            try:
                self._pool = await create_pool(
                    self.redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as exc:
                await self._redis_unavailable(exc)
        self._redis_back()
        await super().main()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            # Jobs in flight go on (they hold their rows' leases in Postgres); a job whose
            # result could not be written to Redis is simply not acknowledged there.
            await self._redis_unavailable(exc)
        except WatchError as exc:
            # Redis dropping while arq WATCHes a job's key is reported as a WatchError that
            # wraps the ConnectionError (redis-py): an outage like any other.
            if not isinstance(exc.__cause__, REDIS_DOWN):
                raise
            await self._redis_unavailable(exc)
        else:
            self._redis_back()

    async def close(self) -> None:
        """arq's close, minus what needs Redis when Redis is down: the shutdown hook (closing
        the runtime, forgetting the heartbeat) always runs, so SIGTERM ends the worker cleanly
        in an outage too."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:  # stopped before Redis ever answered: nothing started but probes
            await stop_probes(self.ctx)
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(*REDIS_DOWN):
            await self.pool.close(close_connection_pool=True)
        self._pool = None

    async def _redis_unavailable(self, exc: BaseException) -> None:
        self._redis_failures += 1
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            self._report_redis(up=False)
            log.warning("worker.redis_unavailable", error=str(exc) or type(exc).__name__)
        await asyncio.sleep(
            full_jitter(
                self._redis_failures, RECONNECT_BASE_SECONDS, RECONNECT_CAP_SECONDS, self._rng
            )
        )

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            down_s = round(time.monotonic() - self._redis_down_since, 1)
            log.info("worker.redis_reconnected", down_s=down_s, attempts=self._redis_failures)
            self._report_redis(up=True)
        self._redis_down_since = None
        self._redis_failures = 0

    def _report_redis(self, *, up: bool) -> None:
        health: WorkerHealth | None = self.ctx.get("health")  # set by startup()
        if health is not None:
            health.redis_up = up


def run() -> None:
    """`procore-hooks worker`: WorkerSettings on the reconnecting worker."""
    ReconnectingWorker(**get_kwargs(WorkerSettings)).run()  # type: ignore[arg-type]
