"""The write jobs' outcomes, for what runs downstream: `job.succeeded`, `job.failed`,
`job.parked` (held by a gate, or `in_doubt` for an operator) and `job.cancelled`, one row
each in `write_job_events`, readable in order by cursor (`GET /admin/jobs/events?after=`).

`emit` is the one place an outcome leaves the write jobs: it runs in the transaction that
changes the job, so an outcome is published exactly when its change commits.

The cursor is the row id. Ids come from a sequence, so a transaction holding id 10 may commit
after one holding id 11; a reader that took 11 would skip 10 for ever. Emitters hold an
advisory lock in shared mode for their transaction, and the reader takes it exclusively for an
instant to learn a horizon (every id at or below it is committed), as the mirror's change feed
does (app.events.mirror).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory
from app.models import JobStatus, WriteJobEvent

SUCCEEDED = "job.succeeded"
FAILED = "job.failed"
PARKED = "job.parked"
CANCELLED = "job.cancelled"
KINDS = (SUCCEEDED, FAILED, PARKED, CANCELLED)

# The outcome a job's new status publishes (other statuses publish nothing).
BY_STATUS = {
    JobStatus.SUCCEEDED: SUCCEEDED,
    JobStatus.FAILED: FAILED,
    JobStatus.PARKED: PARKED,
    JobStatus.IN_DOUBT: PARKED,
    JobStatus.CANCELLED: CANCELLED,
}

JOB_FEED_LOCK = 0x70686A6F62736576  # "phjobsev"

_SHARED = text("SELECT pg_advisory_xact_lock_shared(:k)")

_INSERT = text(
    """
    INSERT INTO write_job_events (job_id, company_id, kind, detail)
    SELECT v.job_id, v.company_id, v.kind, CAST(v.detail AS jsonb)
    FROM unnest(
        CAST(:job_id AS bigint[]), CAST(:company_id AS bigint[]), CAST(:kind AS text[]),
        CAST(:detail AS text[])
    ) WITH ORDINALITY AS v(job_id, company_id, kind, detail, n)
    ORDER BY v.n
    """
)

_HORIZON = text(
    """
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
    FROM write_job_events_id_seq
    """
)


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: int
    company_id: int
    kind: str
    detail: dict[str, Any]


async def emit(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Publish outcomes in the caller's transaction (the one place they are published)."""
    if not outcomes:
        return
    await session.execute(_SHARED, {"k": JOB_FEED_LOCK})
    await session.execute(
        _INSERT,
        {
            "job_id": [o.job_id for o in outcomes],
            "company_id": [o.company_id for o in outcomes],
            "kind": [o.kind for o in outcomes],
            "detail": [orjson.dumps(o.detail).decode() for o in outcomes],
        },
    )


@dataclass(frozen=True, slots=True)
class Published:
    id: int
    at: datetime
    job_id: int
    company_id: int
    kind: str
    detail: dict[str, Any] | None


async def read(
    sessions: SessionFactory,
    *,
    after: int,
    limit: int,
    company_id: int | None = None,
) -> tuple[list[Published], int, bool]:
    """Outcomes after `after`, in order; returns them, the position to continue from, and
    whether more are ready now."""
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": JOB_FEED_LOCK})
        horizon = int((await session.execute(_HORIZON)).scalar_one())
    query = (
        select(WriteJobEvent)
        .where(WriteJobEvent.id > after, WriteJobEvent.id <= horizon)
        .order_by(WriteJobEvent.id)
        .limit(limit + 1)
    )
    if company_id is not None:
        query = query.where(WriteJobEvent.company_id == company_id)
    async with sessions() as session:
        rows = (await session.scalars(query)).all()
    page = rows[:limit]
    more = len(rows) > limit
    reached = page[-1].id if more else max(after, horizon)
    return (
        [Published(r.id, r.at, r.job_id, r.company_id, r.kind, r.detail) for r in page],
        reached,
        more,
    )
