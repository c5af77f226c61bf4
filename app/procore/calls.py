"""The call audit (`procore_calls`): every call to Procore, who was called, the answer.

Calls are collected in memory while a job runs and written with one INSERT in the same
transaction as the outcome they led to, so auditing costs no extra round trip per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


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
