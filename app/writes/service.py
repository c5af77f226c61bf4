"""Write jobs over Postgres: submission and the operator's actions (cancel, replay, resolve).

Functions take a session and flush; the edge (app.admin.service, which audits, under the
admin API and the CLI) commits. The workers run the jobs (app.writes.runner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import JobStatus, WriteJob
from app.writes import outcomes
from app.writes.policy import Submission


class KeyReused(Exception):
    """An idempotency key submitted before with another request."""

    def __init__(self, index: int, key: str, job_id: int) -> None:
        super().__init__(f"idempotency_key {key!r} was used for job {job_id} with another request")
        self.index = index
        self.key = key
        self.job_id = job_id


class ActionRefused(Exception):
    """The job exists but is not in a state this action applies to."""

    def __init__(self, status: JobStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Accepted:
    id: int
    status: JobStatus
    duplicate: bool


_INSERT = text(
    """
    INSERT INTO write_jobs (company_id, project_id, resource_name, operation, resource_id,
        origin_id, idempotency_key, fingerprint, payload, status, submitted_by)
    SELECT v.company_id, v.project_id, v.resource_name, v.operation, v.resource_id, v.origin_id,
        v.idempotency_key, v.fingerprint, CAST(v.payload AS jsonb), 'queued', :actor
    FROM unnest(
        CAST(:company_id AS bigint[]), CAST(:project_id AS bigint[]),
        CAST(:resource_name AS text[]), CAST(:operation AS text[]),
        CAST(:resource_id AS bigint[]), CAST(:origin_id AS text[]),
        CAST(:idempotency_key AS text[]), CAST(:fingerprint AS text[]), CAST(:payload AS text[])
    ) WITH ORDINALITY AS v(company_id, project_id, resource_name, operation, resource_id,
                           origin_id, idempotency_key, fingerprint, payload, n)
    ORDER BY v.n
    ON CONFLICT (company_id, idempotency_key) DO NOTHING
    RETURNING id, company_id, idempotency_key
    """
)

_EXISTING = text(
    """
    SELECT w.id, w.company_id, w.idempotency_key, w.fingerprint, w.status
    FROM write_jobs w
    JOIN unnest(CAST(:company_id AS bigint[]), CAST(:idempotency_key AS text[]))
        AS k(company_id, idempotency_key)
      ON w.company_id = k.company_id AND w.idempotency_key = k.idempotency_key
    """
)


async def submit(
    session: AsyncSession, submissions: Sequence[Submission], *, actor: str
) -> list[Accepted]:
    """Queue the jobs in the order given (their ids are their submission order); a key
    submitted before with the same request answers that job (`duplicate`); with another
    request, KeyReused and nothing is queued (the caller rolls back)."""
    if not submissions:
        return []
    inserted = await session.execute(
        _INSERT,
        {
            "actor": actor[:64],
            "company_id": [s.company_id for s in submissions],
            "project_id": [s.project_id for s in submissions],
            "resource_name": [s.resource_name for s in submissions],
            "operation": [s.operation.value for s in submissions],
            "resource_id": [s.resource_id for s in submissions],
            "origin_id": [s.origin_id for s in submissions],
            "idempotency_key": [s.idempotency_key for s in submissions],
            "fingerprint": [s.fingerprint() for s in submissions],
            "payload": [
                None if s.payload is None else orjson.dumps(s.payload).decode() for s in submissions
            ],
        },
    )
    fresh = {(int(r.company_id), str(r.idempotency_key)): int(r.id) for r in inserted}
    existing = {
        (int(r.company_id), str(r.idempotency_key)): r
        for r in await session.execute(
            _EXISTING,
            {
                "company_id": [s.company_id for s in submissions],
                "idempotency_key": [s.idempotency_key for s in submissions],
            },
        )
    }
    accepted: list[Accepted] = []
    claimed: set[tuple[int, str]] = set()
    for index, submission in enumerate(submissions):
        key = (submission.company_id, submission.idempotency_key)
        row = existing[key]
        if row.fingerprint != submission.fingerprint():
            raise KeyReused(index, submission.idempotency_key, int(row.id))
        new = key in fresh and key not in claimed
        claimed.add(key)
        accepted.append(Accepted(int(row.id), JobStatus(row.status), duplicate=not new))
    return accepted


async def get(session: AsyncSession, job_id: int) -> WriteJob | None:
    return await session.get(WriteJob, job_id)


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: Sequence[JobStatus] = ()
    company_id: int | None = None
    resource_name: str | None = None


def matching(where: JobFilter) -> Select[Any]:
    """The jobs `where` selects (unordered: the caller pages them, `app.cursor.read_page`)."""
    query = select(WriteJob)
    if where.status:
        query = query.where(WriteJob.status.in_(where.status))
    if where.company_id is not None:
        query = query.where(WriteJob.company_id == where.company_id)
    if where.resource_name is not None:
        query = query.where(WriteJob.resource_name == where.resource_name)
    return query


# --- Operator actions -----------------------------------------------------------------------

CANCELLABLE = (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.PARKED, JobStatus.IN_DOUBT)
REPLAYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
REPLAYABLE_WITH_FORCE = (JobStatus.SUCCEEDED, JobStatus.IN_DOUBT)

# `sent_at` is kept: a create that may have happened is looked up (or stops in_doubt) again
# before anything is sent; only an operator's force (or "not made") sends it again as is.
_BACK_TO_QUEUE: dict[str, Any] = {
    "status": JobStatus.QUEUED,
    "attempts": 0,
    "next_attempt_at": func.now(),
    "locked_until": None,
    "gate_id": None,
    "finished_at": None,
}
_SEND_AGAIN: dict[str, Any] = {**_BACK_TO_QUEUE, "sent_at": None}


async def _transition(
    session: AsyncSession,
    job_id: int,
    allowed: Sequence[JobStatus],
    values: dict[str, Any],
    refusal: str,
) -> WriteJob | None:
    """Change the job if it is in one of `allowed` (a conditional UPDATE: a worker changing
    it at the same moment is never overwritten); None if there is no such job."""
    changed = (
        await session.scalars(
            update(WriteJob)
            .where(WriteJob.id == job_id, WriteJob.status.in_(allowed))
            .values(**values)
            .returning(WriteJob)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
    ).one_or_none()
    if changed is not None:
        return changed
    status = (
        await session.execute(select(WriteJob.status).where(WriteJob.id == job_id))
    ).scalar_one_or_none()
    if status is None:
        return None
    raise ActionRefused(status, refusal.format(status=status.value))


async def cancel(session: AsyncSession, job_id: int) -> WriteJob | None:
    """A job not yet done is cancelled (a running one is not: its call may be in flight)."""
    job = await _transition(
        session,
        job_id,
        CANCELLABLE,
        {"status": JobStatus.CANCELLED, "finished_at": func.now(), "locked_until": None},
        "job is {status}: only queued, retrying, parked or in_doubt jobs can be cancelled",
    )
    if job is not None:
        await outcomes.emit(session, [outcomes.of(job, outcomes.CANCELLED)])
    return job


async def replay(session: AsyncSession, job_id: int, *, force: bool) -> WriteJob | None:
    """Back to the queue, attempts reset; it keeps its place (its id) in the company's lane.
    A create that may have happened is looked up again first, unless `force`."""
    allowed = REPLAYABLE + (REPLAYABLE_WITH_FORCE if force else ())
    return await _transition(
        session,
        job_id,
        allowed,
        _SEND_AGAIN if force else _BACK_TO_QUEUE,
        "job is {status}: failed and cancelled jobs can be replayed"
        + ("" if force else " (succeeded and in_doubt ones with force)"),
    )


async def resolve(
    session: AsyncSession, job_id: int, *, resource_id: int | None
) -> WriteJob | None:
    """An operator settles an in_doubt create: Procore has it (the job succeeded with that
    resource) or has not (the job is sent again)."""
    if resource_id is None:
        return await _transition(session, job_id, (JobStatus.IN_DOUBT,), _SEND_AGAIN, _NOT_IN_DOUBT)
    job = await _transition(
        session,
        job_id,
        (JobStatus.IN_DOUBT,),
        {
            "status": JobStatus.SUCCEEDED,
            "resource_id": resource_id,
            "sent_at": None,
            "finished_at": func.now(),
            "last_error": "resolved by an operator",
        },
        _NOT_IN_DOUBT,
    )
    if job is not None:
        await outcomes.emit(session, [outcomes.of(job, outcomes.SUCCEEDED, resolved=True)])
    return job


_NOT_IN_DOUBT = "job is {status}: only in_doubt jobs are resolved"
