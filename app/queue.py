"""The arq queue as the api and dispatcher see it: job names and how to enqueue them.

Redis only carries work that Postgres can re-derive: a lost job costs a delay, never an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from app.settings import Settings

PROCESS_EVENTS = "process_events"


def redis_settings(settings: Settings) -> RedisSettings:
    """For arq workers, which wait (and retry) for Redis at start-up."""
    return RedisSettings.from_dsn(settings.redis_url)


def create_queue_pool(settings: Settings) -> ArqRedis:
    """A lazily connecting pool: the api starts (and stays ready) while Redis is down."""
    connections = ConnectionPool.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=2, max_connections=50
    )
    return ArqRedis(pool_or_conn=connections, default_queue_name=settings.queue_name)


async def enqueue_events(pool: ArqRedis, event_ids: Sequence[int]) -> None:
    """Hand a batch of event ids to the workers.

    Job ids are unique per hand-off: arq refuses a job id it still remembers, and the row's
    claim in Postgres (not the job id) is what makes processing happen once.
    """
    if not event_ids:
        return
    await pool.enqueue_job(
        PROCESS_EVENTS,
        list(event_ids),
        _job_id=f"{pool.default_queue_name}:events:{event_ids[0]}:{uuid.uuid4().hex[:12]}",
    )
