"""Pipeline benchmark: stored event → mirrored resource, beside arq's own no-op job rate.

    python -m bench.pipeline [--events 5000] [--rounds 3]

One worker process (this one), the simulator at zero latency in a process of its own, the
machine's Postgres and Redis. Three measurements per round, back to back on the same Redis:

  (a) pipeline  N events stored as the receiver stores them (`queued`, dispatch lease) and
                handed to the queue as the receiver does, in jobs of JOB_BATCH_SIZE ids, to a
                running worker (`workers.settings.WorkerSettings`: max_jobs, poll delay, queue
                read limit, timeouts), warmed by one job of events first (its pools, token and
                rate budget in place); it claims, fetches each resource from the simulator,
                classifies, and writes mirror + events + call audit. Timed from the hand-off
                to the last event's `finished_at` (the start and warm-up are printed apart);
                every event must end `done` with its resource mirrored.
  (b) arq no-op N jobs of an `async def noop(ctx): pass`, one job per event, drained by a
                burst worker at max_jobs=100: what arq itself does at its busiest.
  (c) arq no-op the same at the project's own max_jobs (the earlier comparison).

Printed: events/s for (a), jobs/s for (b) and (c), a/b (target ≥ 1.0) and a/c. The no-op
workers read the queue as the project's worker does (poll delay, read limit) and run on the
same event loop as the pipeline. `--max-jobs`, `--batch`, `--concurrency` and `--in-flight`
override the project's settings for (a), to choose them by measurement.

The run makes its own database and Redis queue names and removes them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from arq.connections import create_pool
from arq.worker import Worker, func
from redis.asyncio import Redis
from sqlalchemy import text

from app import migrate
from app.queue import JOB_ENCODING, enqueue_events, redis_settings
from app.runtime import open_runtime
from app.settings import Settings
from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from workers import settings as worker_settings
from workers.settings import WorkerSettings

PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RUN_ID = f"ph-bench-pipeline-{os.getpid()}-{secrets.token_hex(3)}"
DATABASE = RUN_ID.replace("-", "_")
ENCRYPTION_KEY = "7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o="
COMPANY, PROJECT = 31, 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Simulated:
    base_url: str
    pid: int


@contextlib.contextmanager
def simulator() -> Iterator[Simulated]:
    """The simulator in a process of its own, so it never competes for this event loop."""
    port = _free_port()
    code = f"from simulator.server import serve; serve('127.0.0.1', {port}, None)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base_url}/_sim/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield Simulated(base_url, proc.pid)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core; not idle, not waiting)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / _TICK


@dataclass(slots=True)
class Meter:
    """Where the CPU went during a measurement: this process (the worker), the simulator, this
    run's Postgres backends, the Redis server (all of it: others' load included) and the
    machine as a whole."""

    redis: Redis
    simulator_pid: int
    postgres_pids: Callable[[], Awaitable[list[int]]] | None = None
    start: dict[str, float] = field(default_factory=dict)
    postgres_start: dict[int, float] = field(default_factory=dict)
    wall: float = 0.0

    async def _redis_cpu(self) -> float:
        info = await self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    async def _sample(self) -> dict[str, float]:
        return {
            "worker": time.process_time(),
            "simulator": _process_cpu(self.simulator_pid),
            "redis": await self._redis_cpu(),
            "machine": _machine_busy(),
        }

    async def begin(self) -> None:
        if self.postgres_pids is not None:
            self.postgres_start = {p: _process_cpu(p) for p in await self.postgres_pids()}
        self.start = await self._sample()
        self.wall = time.perf_counter()

    async def end(self, units: int) -> str:
        """CPU ms per unit (event or job) for each, and the machine's load over the time."""
        now = await self._sample()
        wall = time.perf_counter() - self.wall
        used = {name: now[name] - self.start[name] for name in now}
        parts = [f"worker {used['worker'] * 1000 / units:.2f}"]
        if self.postgres_pids is not None:
            postgres = sum(
                _process_cpu(p) - self.postgres_start.get(p, 0.0)
                for p in await self.postgres_pids()
            )
            parts.append(f"postgres {postgres * 1000 / units:.2f}")
            parts.append(f"simulator {used['simulator'] * 1000 / units:.2f}")
        parts.append(f"redis {used['redis'] * 1000 / units:.2f}")
        return (
            f"CPU ms per unit: {', '.join(parts)}; the machine busy "
            f"{used['machine'] / wall:.2f} of {os.cpu_count()} cores"
        )


# arq at its busiest: the max_jobs of the baseline (b).
ARQ_MAX_JOBS = 100


def worker_kwargs(settings: Settings, max_jobs: int) -> dict[str, Any]:
    """The knobs of WorkerSettings that decide throughput, shared by every measurement."""
    return {
        "redis_settings": redis_settings(settings),
        "max_jobs": max_jobs,
        "poll_delay": WorkerSettings.poll_delay,
        "queue_read_limit": WorkerSettings.queue_read_limit,
        "job_timeout": WorkerSettings.job_timeout,
        "keep_result": WorkerSettings.keep_result,
        "max_tries": WorkerSettings.max_tries,
        "handle_signals": False,
        **JOB_ENCODING,
    }


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def measure_noop(
    settings: Settings, count: int, max_jobs: int, meter: Meter
) -> tuple[float, str]:
    queue = f"{settings.queue_name}:noop:{secrets.token_hex(4)}"
    pool = await create_pool(redis_settings(settings), default_queue_name=queue, **JOB_ENCODING)
    for start in range(0, count, 500):
        await asyncio.gather(
            *(
                pool.enqueue_job("noop", _job_id=f"{queue}:{n}")
                for n in range(start, min(count, start + 500))
            )
        )
    if await pool.zcard(queue) != count:
        raise RuntimeError("not every no-op job was enqueued")
    await pool.aclose()
    worker = Worker(
        functions=[func(noop, name="noop")],
        queue_name=queue,
        burst=True,
        **worker_kwargs(settings, max_jobs),
    )
    await meter.begin()
    started = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - started
    used = await meter.end(count)
    if worker.jobs_complete != count:
        raise RuntimeError(f"{worker.jobs_complete} of {count} no-op jobs completed")
    await _close(worker)
    return count / elapsed, used


async def measure_pipeline(
    settings: Settings, count: int, sim: httpx.AsyncClient, max_jobs: int, meter: Meter
) -> tuple[float, str]:
    warm = settings.job_batch_size
    created = await sim.post(
        "/_sim/events",
        json={
            "company_id": COMPANY,
            "project_id": PROJECT,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": warm + count,
        },
    )
    created.raise_for_status()
    resource_ids: list[int] = created.json()["resource_ids"]
    runtime = open_runtime(settings, name="bench-pipeline-producer")

    async def progress() -> tuple[int, int, datetime | None]:
        async with runtime.sessions() as session:
            pending, done, last = (
                await session.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status <> 'done'),"
                        " count(*) FILTER (WHERE status = 'done'), max(finished_at) FROM events"
                    )
                )
            ).one()
        return int(pending), int(done), last

    async def backends() -> list[int]:
        async with runtime.sessions() as session:
            pids = await session.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return list(pids.scalars())

    async def hand_off(ids: list[int]) -> None:
        size = settings.job_batch_size
        for start in range(0, len(ids), size):
            await enqueue_events(runtime.queue, ids[start : start + size])

    try:
        async with runtime.engine.begin() as conn:
            await conn.execute(text("TRUNCATE events, resources, procore_calls"))
            ids = (
                await conn.execute(
                    text(
                        """
                        INSERT INTO events (dedupe_key, payload_version, company_id, project_id,
                            resource_name, resource_id, event_type, reason, raw, status,
                            locked_until)
                        SELECT 'bench-' || n, 'v2', :company, :project, 'RFIs', rid, 'update',
                            'update', '{}'::jsonb, 'queued', now() + interval '300 seconds'
                        FROM unnest(CAST(:rids AS bigint[])) WITH ORDINALITY AS t(rid, n)
                        RETURNING id
                        """
                    ),
                    {"company": COMPANY, "project": PROJECT, "rids": resource_ids},
                )
            ).scalars()
            event_ids = sorted(ids)
        await hand_off(event_ids[:warm])

        worker = Worker(
            # Every job the production worker registers (the upkeep also hands out hooks
            # syncs, which must find their function as they would in production).
            functions=list(worker_settings.JOBS),
            cron_jobs=WorkerSettings.cron_jobs,
            queue_name=settings.queue_name,
            ctx={"settings": settings},
            on_startup=worker_settings.startup,
            on_shutdown=worker_settings.shutdown,
            **worker_kwargs(settings, max_jobs),
        )
        started_at = datetime.now().astimezone()
        task = asyncio.create_task(worker.async_run())
        # Warm-up: the worker's pools, its token and the rate budget in place, the company
        # proven (one job of events); then the measured events are handed off, as the
        # receiver hands them to a running worker.
        while (await progress())[1] < warm:
            await asyncio.sleep(0.05)
            if task.done():
                task.result()
        warmed = datetime.now().astimezone() - started_at
        meter.postgres_pids = backends
        await meter.begin()
        handed_at = datetime.now().astimezone()
        await hand_off(event_ids[warm:])
        while True:
            await asyncio.sleep(0.1)
            pending, done, last = await progress()
            if pending == 0:
                used = await meter.end(count)
                break
            if task.done():
                task.result()
        worker.max_burst_jobs, worker.burst = 0, True
        await asyncio.wait([task], timeout=60)
        await _close(worker)
        async with runtime.sessions() as session:
            mirrored = (
                await session.execute(text("SELECT count(*) FROM resources WHERE data IS NOT NULL"))
            ).scalar_one()
        if done != warm + count or mirrored != warm + count:
            raise RuntimeError(f"{done} done and {mirrored} mirrored of {warm + count} events")
        assert last is not None
        used += (
            f"; the worker's start and warm-up ({warm} events) took {warmed.total_seconds():.2f} s"
        )
        return float(count / (last - handed_at).total_seconds()), used
    finally:
        await runtime.close()


async def _close(worker: Worker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # arq closes with redis' close()
        await worker.close()


@dataclass(frozen=True, slots=True)
class Knobs:
    """The pipeline's settings for (a): the project's unless overridden on the command line."""

    max_jobs: int | None = None
    batch: int | None = None
    concurrency: int | None = None
    in_flight: int | None = None

    def settings(self) -> dict[str, Any]:
        chosen = {
            "worker_max_jobs": self.max_jobs,
            "job_batch_size": self.batch,
            "process_concurrency": self.concurrency,
            "procore_max_in_flight": self.in_flight,
        }
        return {name: value for name, value in chosen.items() if value is not None}


async def run(events: int, rounds: int, knobs: Knobs) -> int:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    database_url = f"{base}/{DATABASE}"
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.to_thread(migrate.upgrade, database_url)
        with simulator() as sim_process:
            base_url = sim_process.base_url
            settings = Settings(
                _env_file=None,
                database_url=database_url,
                redis_url=REDIS_URL,
                queue_name=f"{RUN_ID}:queue",
                encryption_key=ENCRYPTION_KEY,
                procore_api_base=base_url,
                procore_login_base=base_url,
                procore_client_id=DEFAULT_CLIENT_ID,
                procore_client_secret=DEFAULT_CLIENT_SECRET,
                log_level="WARNING",
                **knobs.settings(),
            )
            project_max_jobs = WorkerSettings.max_jobs
            max_jobs = settings.worker_max_jobs
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as sim:
                limits = {"hourly": 10**9, "spike": 10**9}
                (await sim.put("/_sim/rate_limit", json=limits)).raise_for_status()
                print(
                    f"load average {os.getloadavg()[0]:.2f}; {events} events; one worker process "
                    f"(max_jobs={max_jobs}, job batch={settings.job_batch_size}, "
                    f"process concurrency={settings.process_concurrency}, Procore calls in "
                    f"flight={settings.procore_max_in_flight}); simulator at zero latency in its "
                    f"own process; event loop {type(asyncio.get_running_loop()).__module__}"
                )
                results: list[tuple[float, float, float]] = []
                for n in range(1, rounds + 1):
                    meter = Meter(redis, sim_process.pid)
                    arq_rate, arq_cpu = await measure_noop(settings, events, ARQ_MAX_JOBS, meter)
                    pipeline_rate, pipeline_cpu = await measure_pipeline(
                        settings, events, sim, max_jobs, meter
                    )
                    meter = Meter(redis, sim_process.pid)
                    own_rate, _ = await measure_noop(settings, events, project_max_jobs, meter)
                    results.append((pipeline_rate, arq_rate, own_rate))
                    print(_line(f"round {n}", pipeline_rate, arq_rate, own_rate, project_max_jobs))
                    print(f"  (a) {pipeline_cpu}")
                    print(f"  (b) {arq_cpu}")
                if results:
                    a, b, c = (statistics.median(r[i] for r in results) for i in range(3))
                    ratio = statistics.median(r[0] / r[1] for r in results)
                    print(_line("median ", a, b, c, project_max_jobs))
                    print(f"median of the rounds' a/b: {ratio:.2f}")
                calls = (await sim.get("/_sim/calls")).json()
                print(f"simulator calls: {calls['total']} {calls['by_status']}")
    finally:
        async for key in redis.scan_iter(match=f"*{RUN_ID}*"):
            await redis.delete(key)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.close()
    return 0


def _line(label: str, pipeline: float, arq: float, own: float, own_max_jobs: int) -> str:
    return (
        f"{label}: (a) pipeline {pipeline:6.0f} events/s   "
        f"(b) arq no-op max_jobs={ARQ_MAX_JOBS} {arq:6.0f} jobs/s   a/b = {pipeline / arq:.2f}   "
        f"(c) arq no-op max_jobs={own_max_jobs} {own:6.0f} jobs/s   a/c = {pipeline / own:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-jobs", type=int, help="(a) only; default WORKER_MAX_JOBS")
    parser.add_argument("--batch", type=int, help="(a) only; default JOB_BATCH_SIZE")
    parser.add_argument("--concurrency", type=int, help="(a) only; default PROCESS_CONCURRENCY")
    parser.add_argument("--in-flight", type=int, help="(a) only; default PROCORE_MAX_IN_FLIGHT")
    args = parser.parse_args()
    knobs = Knobs(args.max_jobs, args.batch, args.concurrency, args.in_flight)
    raise SystemExit(asyncio.run(run(args.events, args.rounds, knobs)))


if __name__ == "__main__":
    main()
