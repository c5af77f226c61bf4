"""The dispatcher: due rows in Postgres → batches on the arq queue.

Runs as an arq cron on one worker per tick. Postgres is the truth: a row is due when it waits
(`queued`/`retrying`) or its processing lease expired, its `next_attempt_at` has come, and no
dispatch lease holds it. Taking a row sets a short dispatch lease so the next tick does not hand
it out again while its job waits in Redis; if Redis lost the job, the lease runs out and the row
is handed out again. Nothing is lost when Redis is flushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory
from app.logs import get_logger
from app.queue import enqueue_events
from app.settings import Settings

log = get_logger(__name__)


class DispatchDeps(Protocol):
    """What dispatching due events to the queue uses. The edges pass the process's Runtime, which
    has all of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    queue: ArqRedis


# Work is taken fairly: each company gets at most `per_company` rows a tick, and when the tick
# cannot take them all the companies take turns (every company's first row, then every
# company's second row, ...; ties in random order), so one company's backlog or fan-out storm
# never starves the others. The companies with due rows are found by a loose index scan (one
# index probe per company), not by reading every due row.
#
# A `processing` row whose lease ran out (its worker died or hung) goes back to `retrying`:
# a worker claims it like any waiting row, and the late worker's fenced writes (which require
# `status = 'processing'` and its own claim) can no longer land.
_TAKE_DUE = text(
    """
    WITH RECURSIVE companies AS (
        (
            SELECT company_id FROM events
            WHERE status IN ('queued', 'retrying', 'processing') AND next_attempt_at <= now()
            ORDER BY company_id LIMIT 1
        )
        UNION ALL
        SELECT (
            SELECT e.company_id FROM events e
            WHERE e.status IN ('queued', 'retrying', 'processing')
              AND e.next_attempt_at <= now()
              AND e.company_id > c.company_id
            ORDER BY e.company_id LIMIT 1
        )
        FROM companies c WHERE c.company_id IS NOT NULL
    ),
    candidates AS (
        SELECT e.id,
               row_number() OVER (PARTITION BY c.company_id ORDER BY e.next_attempt_at, e.id)
                   AS turn
        FROM companies c
        CROSS JOIN LATERAL (
            SELECT id, next_attempt_at FROM events
            WHERE company_id = c.company_id
              AND status IN ('queued', 'retrying', 'processing')
              AND next_attempt_at <= now()
              AND (locked_until IS NULL OR locked_until < now())
            ORDER BY next_attempt_at, id
            LIMIT :per_company
        ) e
        WHERE c.company_id IS NOT NULL
    ),
    picked AS (
        SELECT id FROM candidates ORDER BY turn, random() LIMIT :total
    ),
    locked AS (
        SELECT id FROM events
        WHERE id IN (SELECT id FROM picked)
          AND status IN ('queued', 'retrying', 'processing')
          AND (locked_until IS NULL OR locked_until < now())
        FOR UPDATE SKIP LOCKED
    )
    UPDATE events SET
        locked_until = now() + make_interval(secs => :lease),
        status = CASE WHEN events.status = 'processing' THEN 'retrying' ELSE events.status END
    FROM locked WHERE events.id = locked.id
    RETURNING events.id, events.company_id, events.resource_name, events.resource_id
    """
)

# Rows handed to the queue but not yet claimed by a worker: the queue's backlog.
_HANDED_OUT = text(
    """
    SELECT count(*) FROM events
    WHERE status IN ('queued', 'retrying') AND locked_until > now()
    """
)

_RELEASE_LEASE = text("UPDATE events SET locked_until = NULL WHERE id = ANY(:ids)")


@dataclass(frozen=True, slots=True)
class DueRow:
    id: int
    company_id: int
    resource_name: str | None
    resource_id: int | None


async def take_due(
    session: AsyncSession,
    *,
    total: int,
    per_company: int,
    lease_seconds: float,
    max_backlog: int,
) -> list[DueRow]:
    """Lease up to `total` due rows, unless the queue already holds `max_backlog` of them.

    Keeping the queue short is what makes the per-company share real: new work for a quiet
    company is never stuck behind thousands of jobs already waiting in Redis.
    """
    backlog = (await session.execute(_HANDED_OUT)).scalar_one()
    room = min(total, max_backlog - backlog)
    if room <= 0:
        return []
    result = await session.execute(
        _TAKE_DUE, {"per_company": per_company, "total": room, "lease": lease_seconds}
    )
    return [DueRow(*row) for row in result.all()]


async def release_lease(session: AsyncSession, event_ids: Sequence[int]) -> None:
    """Make rows due again at once (their hand-off to the queue failed)."""
    await session.execute(_RELEASE_LEASE, {"ids": list(event_ids)})


def batches(rows: Iterable[DueRow], size: int) -> list[list[int]]:
    """Split leased rows into job batches, one company per batch and the same resource
    together, so one job can serve several events for one resource with one fetch."""
    ordered = sorted(
        rows, key=lambda r: (r.company_id, r.resource_name or "", r.resource_id or 0, r.id)
    )
    out: list[list[int]] = []
    for _, company_rows in groupby(ordered, key=lambda r: r.company_id):
        ids = [r.id for r in company_rows]
        out.extend(ids[i : i + size] for i in range(0, len(ids), size))
    return out


async def dispatch_once(deps: DispatchDeps) -> int:
    """One dispatcher tick: rounds of (lease due rows, commit, then enqueue) until nothing is
    due or the queue's backlog is full. Each round gives every company at most
    `dispatch_per_company` rows, so a tick is fair and still fills the queue when one company
    has all the work."""
    settings = deps.settings
    handed = 0
    while handed < settings.dispatch_max_backlog:
        taken, more = await _dispatch_round(deps)
        handed += taken
        if not more:
            break
    if handed:
        log.debug("dispatch.handed_out", events=handed)
    return handed


async def _dispatch_round(deps: DispatchDeps) -> tuple[int, bool]:
    """Returns the rows handed to the queue, and whether another round may find more."""
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
        rows = await take_due(
            session,
            total=settings.dispatch_batch_size,
            per_company=settings.dispatch_per_company,
            lease_seconds=settings.dispatch_lease_seconds,
            max_backlog=settings.dispatch_max_backlog,
        )
    handed = 0
    pending = batches(rows, settings.job_batch_size)
    while pending:
        try:
            await enqueue_events(deps.queue, pending[0])
        except (RedisError, OSError) as exc:
            log.warning("dispatch.enqueue_failed", events=sum(map(len, pending)), error=str(exc))
            async with deps.sessions() as session, session.begin():
                await release_lease(session, [i for batch in pending for i in batch])
            return handed, False
        handed += len(pending.pop(0))
    return handed, bool(rows)
