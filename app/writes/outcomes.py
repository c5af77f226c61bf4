"""The write jobs' outcomes, told downstream: `job.succeeded`, `job.failed`, `job.parked`
(held by a gate, or `in_doubt` for an operator) and `job.cancelled`.

`emit` is the one place an outcome leaves the write jobs. It appends to the outbox
(app.feed.outbox) in the transaction that changes the job, so an outcome is published exactly
when its change commits, and reaches destinations like every other fact. `read` is the same
feed for a reader that pulls (`GET /admin/jobs/events?after=`): the outbox's job rows, in
order, below its horizon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory
from app.feed import Feed, horizon, outbox
from app.feed.messages import JOB_CANCELLED, JOB_FAILED, JOB_PARKED, JOB_SUCCEEDED, JOB_TYPES
from app.models import JobStatus

SUCCEEDED, FAILED, PARKED, CANCELLED = JOB_SUCCEEDED, JOB_FAILED, JOB_PARKED, JOB_CANCELLED

# The outcome a job's new status publishes (other statuses publish nothing).
BY_STATUS = {
    JobStatus.SUCCEEDED: SUCCEEDED,
    JobStatus.FAILED: FAILED,
    JobStatus.PARKED: PARKED,
    JobStatus.IN_DOUBT: PARKED,
    JobStatus.CANCELLED: CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: int
    company_id: int
    kind: str
    detail: dict[str, Any]


def of(job: Any, kind: str, **detail: Any) -> Outcome:
    """The outcome of a job row (anything with the job's columns as attributes): the ids a
    consumer knows it by (its idempotency key and origin_id), what it wrote, and `detail`."""
    fields: dict[str, Any] = {
        "status": str(job.status),
        "resource_name": job.resource_name,
        "operation": str(job.operation),
        "project_id": job.project_id,
        "resource_id": job.resource_id,
        "origin_id": job.origin_id,
        "idempotency_key": job.idempotency_key,
    }
    fields.update(detail)
    return Outcome(int(job.id), int(job.company_id), kind, fields)


async def emit(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Publish outcomes in the caller's transaction (the one place they are published)."""
    for outcome in outcomes:
        await outbox.append(
            session,
            outcome.kind,
            company_id=outcome.company_id,
            data={"job_id": outcome.job_id, **outcome.detail},
        )


@dataclass(frozen=True, slots=True)
class Published:
    id: int
    at: datetime
    job_id: int
    company_id: int
    kind: str
    detail: dict[str, Any]


async def read(
    sessions: SessionFactory,
    *,
    after: int,
    limit: int,
    company_id: int | None = None,
) -> tuple[list[Published], int, bool]:
    """Outcomes after the outbox position `after`, in order; returns them, the position to
    continue from, and whether more are ready now."""
    upto = await horizon(sessions, Feed.OUTBOX)
    async with sessions() as session:
        rows = await outbox.read(
            session,
            after,
            upto,
            limit + 1,
            company_ids=None if company_id is None else [company_id],
            types=JOB_TYPES,
        )
    page = rows[:limit]
    more = len(rows) > limit
    reached = page[-1].id if more else max(after, upto)
    found = []
    for row in page:
        detail = {k: v for k, v in row.data.items() if k != "job_id"}
        job_id, company = int(row.data["job_id"]), int(row.company_id or 0)
        found.append(Published(row.id, row.at, job_id, company, row.type, detail))
    return found, reached, more
