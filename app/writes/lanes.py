"""Write jobs upkeep (an arq cron, one worker per tick): hand out due lanes, release the
parked jobs of scopes the gates open again, expire jobs parked past the retention.

- Dispatch: a company's lane is due when its head (its oldest unfinished job) is due and no
  batch of it is running; one `run_writes` job per due company, found by a loose index scan
  (one probe per company), fairly across companies. The head gets a short dispatch lease so
  the next tick does not hand the lane out again while its job waits in Redis; if Redis lost
  the job, the lease runs out and the lane is handed out again. Nothing is lost when Redis is
  flushed: the lanes are rows.
- Release: for each scope holding parked jobs, the gates are asked (`gates.verdict`, the one
  answer to "which gate holds this work"); an open scope's jobs go back to the queue. They keep
  their ids, so the lane runs them in submission order, one batch after the other.
"""

from __future__ import annotations

from typing import Protocol

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import text

from app.db import SessionFactory
from app.gates import service as gates
from app.gates.scopes import Work
from app.logs import get_logger
from app.queue import enqueue_writes
from app.settings import Settings
from app.writes import outcomes

log = get_logger(__name__)


class LanesDeps(Protocol):
    """What dispatching and tending the write lanes uses. The edges pass the process's Runtime,
    which has all of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    queue: ArqRedis


_DUE_LANES = text(
    """
    WITH RECURSIVE companies AS (
        (
            SELECT company_id FROM write_jobs
            WHERE status IN ('queued', 'retrying', 'running')
            ORDER BY company_id LIMIT 1
        )
        UNION ALL
        SELECT (
            SELECT w.company_id FROM write_jobs w
            WHERE w.status IN ('queued', 'retrying', 'running') AND w.company_id > c.company_id
            ORDER BY w.company_id LIMIT 1
        )
        FROM companies c WHERE c.company_id IS NOT NULL
    )
    SELECT c.company_id, head.id
    FROM companies c
    CROSS JOIN LATERAL (
        SELECT id, next_attempt_at, locked_until FROM write_jobs
        WHERE company_id = c.company_id AND status IN ('queued', 'retrying', 'running')
        ORDER BY id LIMIT 1
    ) head
    WHERE c.company_id IS NOT NULL AND head.next_attempt_at <= now()
      AND (head.locked_until IS NULL OR head.locked_until < now())
    ORDER BY random()
    LIMIT :limit
    """
)

# A `running` head whose lease ran out (its worker died) goes back to `retrying`: the lease
# the dispatcher sets is a hand-off lease, never mistaken for a batch in flight.
_LEASE_HEADS = text(
    """
    UPDATE write_jobs SET locked_until = now() + make_interval(secs => :lease),
        status = CASE WHEN status = 'running' THEN 'retrying' ELSE status END
    WHERE id = ANY(CAST(:ids AS bigint[])) AND status IN ('queued', 'retrying', 'running')
      AND (locked_until IS NULL OR locked_until < now())
    RETURNING id, company_id
    """
)

_RELEASE_LEASE = text(
    "UPDATE write_jobs SET locked_until = NULL WHERE id = ANY(CAST(:ids AS bigint[]))"
    " AND status IN ('queued', 'retrying')"
)


async def dispatch_once(deps: LanesDeps, *, limit: int = 500) -> int:
    """Hand every due lane to the workers (one job per company); returns how many."""
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
        heads = (await session.execute(_DUE_LANES, {"limit": limit})).all()
        if not heads:
            return 0
        leased = (
            await session.execute(
                _LEASE_HEADS,
                {"ids": [int(h.id) for h in heads], "lease": settings.dispatch_lease_seconds},
            )
        ).all()
    handed = 0
    for row in leased:
        try:
            await enqueue_writes(deps.queue, int(row.company_id))
        except (RedisError, OSError) as exc:
            log.warning("write_jobs.enqueue_failed", company_id=row.company_id, error=str(exc))
            async with deps.sessions() as session, session.begin():
                rest = [int(r.id) for r in leased[handed:]]
                await session.execute(_RELEASE_LEASE, {"ids": rest})
            break
        handed += 1
    return handed


_PARKED_SCOPES = text(
    """
    SELECT DISTINCT credential_id, company_id, project_id, resource_name FROM write_jobs
    WHERE status = 'parked'
    LIMIT :limit
    """
)

_RELEASE = text(
    """
    UPDATE write_jobs SET status = 'queued', gate_id = NULL, locked_until = NULL,
        next_attempt_at = now(), last_error = NULL
    WHERE id IN (
        SELECT id FROM write_jobs
        WHERE status = 'parked' AND company_id = :company_id
          AND project_id IS NOT DISTINCT FROM :project_id
          AND credential_id IS NOT DISTINCT FROM :credential_id
          AND resource_name = :resource_name
        ORDER BY id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def release_opened(deps: LanesDeps, *, scopes: int = 200) -> int:
    """Parked jobs of scopes the gates no longer hold go back to the queue (in id order,
    a batch per scope per tick)."""
    batch = deps.settings.release_batch_size
    released = 0
    async with deps.sessions() as session, session.begin():
        rows = (await session.execute(_PARKED_SCOPES, {"limit": scopes})).all()
        for row in rows:
            verdict = await gates.verdict(
                session,
                Work(row.company_id, row.project_id, row.resource_name, row.credential_id),
            )
            if not verdict.open:
                continue
            ids = (
                await session.execute(
                    _RELEASE,
                    {
                        "company_id": row.company_id,
                        "project_id": row.project_id,
                        "credential_id": row.credential_id,
                        "resource_name": row.resource_name,
                        "batch": batch,
                    },
                )
            ).all()
            released += len(ids)
            if ids:
                log.info("write_jobs.released", company_id=row.company_id, jobs=len(ids))
    return released


_EXPIRE = text(
    """
    UPDATE write_jobs SET status = 'failed', last_error = 'expired_while_parked',
        finished_at = now(), gate_id = NULL
    WHERE id IN (
        SELECT id FROM write_jobs
        WHERE status = 'parked' AND created_at < now() - make_interval(secs => :seconds)
        ORDER BY id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, company_id, project_id, resource_name, operation, origin_id, idempotency_key,
        status, resource_id
    """
)


async def expire_parked(deps: LanesDeps, *, batch: int = 1000) -> int:
    """Jobs parked longer than PARKED_RETENTION_DAYS fail (`expired_while_parked`),
    visible and replayable."""
    async with deps.sessions() as session, session.begin():
        rows = (
            await session.execute(
                _EXPIRE,
                {"seconds": deps.settings.parked_retention_days * 86400, "batch": batch},
            )
        ).all()
        await outcomes.emit(
            session,
            [outcomes.of(r, outcomes.FAILED, reason="expired_while_parked") for r in rows],
        )
    if rows:
        log.warning("write_jobs.expired_while_parked", jobs=len(rows))
    return len(rows)


async def tend(deps: LanesDeps) -> None:
    """One tick: release what the gates opened, expire, hand out the due lanes."""
    await release_opened(deps)
    await expire_parked(deps)
    await dispatch_once(deps)
