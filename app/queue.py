"""The arq queue: the jobs' names, their ids, how each is enqueued and how jobs are encoded. One
home: the workers register their functions under these names (workers.settings.JOBS).

Redis only carries work that Postgres can re-derive: a lost job costs a delay, never an event.
Job ids are unique per hand-off (arq refuses a job id it still remembers); what makes work
happen once is its row's claim in Postgres, not the job id.

Jobs are data, not code: arq's default encoding is pickle, which runs whatever a job names,
so anyone able to write to Redis could run code in a worker (which holds the encryption key,
the client secret and the database). Jobs and results are JSON instead. A job queued as a
pickle before this encoding (a deploy in the middle of a queue) is still read, by an
unpickler that refuses every global, so only plain data can come out of it; anything else is
refused and its work is re-derived from Postgres when its lease runs out.
"""

from __future__ import annotations

import io
import pickle
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix
from arq.jobs import serialize_job as arq_job_record
from arq.utils import timestamp_ms
from redis.asyncio import ConnectionPool

from app.settings import Settings

PROCESS_EVENTS = "process_events"
SYNC_HOOKS = "sync_hooks"
RUN_RESYNC = "run_resync"
RUN_WRITES = "run_writes"
DELIVER = "deliver"


# The first byte of a pickle of protocol 2 or newer (what arq wrote by default).
_PICKLE_PROTO = b"\x80"


def _plain(value: object) -> str:
    # A failed job's result is its exception: kept as its text.
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def serialize_job(data: dict[str, Any]) -> bytes:
    """arq's job and result dicts as JSON (`job_serializer`)."""
    return orjson.dumps(data, default=_plain)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    """JSON, or a legacy pickle of plain data (`job_deserializer`); anything else raises."""
    data = _DataOnlyUnpickler(raw).load() if raw[:1] == _PICKLE_PROTO else orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a job is a JSON object")
    return data


class _DataOnlyUnpickler(pickle.Unpickler):
    """Reads dicts, lists, tuples, strings, numbers: every global (the only way a pickle can
    reach code to call) is refused."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw))

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name} in a queued job")


# Passed to every arq pool and worker of the service.
JOB_ENCODING: dict[str, Any] = {
    "job_serializer": serialize_job,
    "job_deserializer": deserialize_job,
}


def redis_settings(settings: Settings) -> RedisSettings:
    """For arq workers, which wait (and retry) for Redis at start-up."""
    return RedisSettings.from_dsn(settings.redis_url)


def create_queue_pool(settings: Settings) -> ArqRedis:
    """A lazily connecting pool: the api starts (and stays ready) while Redis is down."""
    connections = ConnectionPool.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=2, max_connections=50
    )
    return ArqRedis(
        pool_or_conn=connections, default_queue_name=settings.queue_name, **JOB_ENCODING
    )


async def enqueue_events(pool: ArqRedis, event_ids: Sequence[int], *, per_job: int = 0) -> None:
    """Hand event ids to the workers: one job, or one job per `per_job` ids, in one round trip.

    Each job's id is fresh (a random part), so it cannot be one arq still remembers: the
    records are written the way arq's `enqueue_job` writes them (the job under its key, its
    id in the queue's sorted set, in one MULTI/EXEC), without its WATCH and existence check,
    which cost two more round trips per job and guard only ids that may repeat.
    """
    if not event_ids:
        return
    size = per_job if per_job > 0 else len(event_ids)
    now = timestamp_ms()
    async with pool.pipeline(transaction=True) as pipe:
        for start in range(0, len(event_ids), size):
            batch = list(event_ids[start : start + size])
            job_id = f"{pool.default_queue_name}:events:{batch[0]}:{uuid.uuid4().hex[:12]}"
            record = arq_job_record(
                PROCESS_EVENTS, (batch,), {}, None, now, serializer=pool.job_serializer
            )
            pipe.psetex(job_key_prefix + job_id, pool.expires_extra_ms, record)
            pipe.zadd(pool.default_queue_name, {job_id: now})
        await pipe.execute()


async def enqueue_hooks_sync(pool: ArqRedis, company_id: int, due_at: datetime) -> None:
    """Sync a company's hook: one job per request (its due time)."""
    stamp = int(due_at.timestamp() * 1_000_000)
    await pool.enqueue_job(
        SYNC_HOOKS, company_id, _job_id=f"{pool.default_queue_name}:hooks:{company_id}:{stamp}"
    )


async def enqueue_resync(pool: ArqRedis, run_id: int, attempts: int) -> None:
    """Run (or resume) a resync: one job per claim of the run."""
    await pool.enqueue_job(
        RUN_RESYNC, run_id, _job_id=f"{pool.default_queue_name}:resync:{run_id}:{attempts}"
    )


async def enqueue_writes(pool: ArqRedis, company_id: int) -> None:
    """Run a company's lane of write jobs (a fresh id per hand-off; the lane's claim in
    Postgres makes two runs of one company harmless)."""
    await pool.enqueue_job(
        RUN_WRITES,
        company_id,
        _job_id=f"{pool.default_queue_name}:writes:{company_id}:{uuid.uuid4().hex[:12]}",
    )


async def enqueue_delivery(pool: ArqRedis, destination_id: int) -> None:
    """Wake a destination's delivery: one id while a job waits or runs (wake-ups coalesce; the
    job looks again before it ends). The job keeps no result, so the id is free at once."""
    await pool.enqueue_job(
        DELIVER, destination_id, _job_id=f"{pool.default_queue_name}:deliver:{destination_id}"
    )


async def enqueue_delivery_tick(pool: ArqRedis, destination_id: int, stamp: int) -> None:
    """The upkeep's hand-off of a due destination (retries, probes): one id per tick, so a
    wake-up job stuck with a killed worker never blocks it."""
    await pool.enqueue_job(
        DELIVER,
        destination_id,
        _job_id=f"{pool.default_queue_name}:deliver:{destination_id}:tick:{stamp}",
    )
