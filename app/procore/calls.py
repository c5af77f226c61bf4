"""The call audit (`procore_calls`): every call to Procore, who was called, the answer.

Calls are collected in memory while a job runs and written with one INSERT in the same
transaction as the outcome they led to, so auditing costs no extra round trip per call. Rows
older than PROCORE_CALLS_RETENTION_DAYS are deleted by an upkeep tick (`prune_calls`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import PRUNE_BATCH, PRUNE_BATCHES_PER_RUN, SessionFactory, prune_older_than


class Purpose:
    FETCH = "fetch"
    PROBE = "probe"
    DIAGNOSE = "diagnose"
    TOKEN = "token"  # noqa: S105 (a purpose, not a secret)
    REVOKE = "revoke"
    CONNECT = "connect"
    HOOKS = "hooks"
    # Write jobs (app.writes): the write itself, and the look-up of a create in doubt.
    WRITE = "write"
    LOOKUP = "lookup"


@dataclass(frozen=True, slots=True)
class CallRecord:
    purpose: str
    method: str
    path: str
    status: int | None
    latency_ms: int
    credential_id: int | None = None
    company_id: int | None = None
    project_id: int | None = None
    event_id: int | None = None
    error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


_INSERT = text(
    """
    INSERT INTO procore_calls
        (at, credential_id, company_id, project_id, event_id, purpose, method, path, status,
         latency_ms, error)
    SELECT * FROM unnest(
        CAST(:at AS timestamptz[]), CAST(:credential_id AS bigint[]),
        CAST(:company_id AS bigint[]), CAST(:project_id AS bigint[]),
        CAST(:event_id AS bigint[]), CAST(:purpose AS text[]), CAST(:method AS text[]),
        CAST(:path AS text[]), CAST(:status AS int[]), CAST(:latency_ms AS int[]),
        CAST(:error AS text[])
    )
    """
)


async def record_calls(
    session: AsyncSession | AsyncConnection, calls: Sequence[CallRecord]
) -> None:
    if not calls:
        return
    await session.execute(
        _INSERT,
        {
            "at": [c.at for c in calls],
            "credential_id": [c.credential_id for c in calls],
            "company_id": [c.company_id for c in calls],
            "project_id": [c.project_id for c in calls],
            "event_id": [c.event_id for c in calls],
            "purpose": [c.purpose for c in calls],
            "method": [c.method for c in calls],
            "path": [c.path[:500] for c in calls],
            "status": [c.status for c in calls],
            "latency_ms": [c.latency_ms for c in calls],
            "error": [c.error for c in calls],
        },
    )


# Oldest first by the `at` index; the ids as an array, so the delete finds them by key; rows
# another run has locked are left to it.
_PRUNE = text(
    """
    DELETE FROM procore_calls WHERE id = ANY(ARRAY(
        SELECT id FROM procore_calls
        WHERE at < now() - make_interval(secs => :seconds)
        ORDER BY at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ))
    """
)


async def prune_calls(
    sessions: SessionFactory,
    *,
    retention_days: float,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES_PER_RUN,
) -> int:
    """Delete audited calls older than the retention; returns how many went."""
    return await prune_older_than(
        sessions,
        _PRUNE,
        table="procore_calls",
        days=retention_days,
        batch=batch,
        batches=batches,
    )
