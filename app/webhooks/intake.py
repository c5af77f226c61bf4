"""Events the service takes in besides `POST /webhooks/procore`, stored like a delivery.

- Deliveries Procore discarded (its Deliveries API lists them, with their events, after 12 h
  of failed delivery): the events the receiver never saw. Stored under their own ULID, so
  one that did arrive after all is a duplicate, as it would be at the receiver.
- Resources a resync found absent from every list: a suspected deletion, stored as a
  `delete` event, which the pipeline applies only when Procore confirms it (a 404).

Either way the one pipeline serves them: gates, coalescing, the fetch, the mirror.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EventStatus
from app.webhooks.payloads import NormalisedEvent

_INSERT = text(
    """
    INSERT INTO events (
        dedupe_key, payload_version, procore_event_id, company_id, project_id, user_id,
        resource_name, resource_id, event_type, reason, source_application_id, occurred_at,
        raw, status, last_error, finished_at
    )
    SELECT k, v, pe, c, p, u, rn, ri, et, r, sa, oa, CAST(raw AS jsonb), st, note,
           CASE WHEN st = 'queued' THEN NULL ELSE now() END
    FROM unnest(
        CAST(:k AS text[]), CAST(:v AS text[]), CAST(:pe AS bigint[]), CAST(:c AS bigint[]),
        CAST(:p AS bigint[]), CAST(:u AS bigint[]), CAST(:rn AS text[]), CAST(:ri AS bigint[]),
        CAST(:et AS text[]), CAST(:r AS text[]), CAST(:sa AS text[]),
        CAST(:oa AS timestamptz[]), CAST(:raw AS text[]), CAST(:st AS text[]),
        CAST(:note AS text[])
    ) AS t(k, v, pe, c, p, u, rn, ri, et, r, sa, oa, raw, st, note)
    ORDER BY t.k
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


async def store(session: AsyncSession, events: Sequence[NormalisedEvent]) -> int:
    """Insert what is new (the caller's transaction commits); returns how many were new.
    The dispatcher hands them to the workers."""
    rows = [e for event in events for e in (event, *event.related)]
    if not rows:
        return 0
    result = await session.execute(
        _INSERT,
        {
            "k": [e.dedupe_key for e in rows],
            "v": [e.payload_version for e in rows],
            "pe": [e.procore_event_id for e in rows],
            "c": [e.company_id for e in rows],
            "p": [e.project_id for e in rows],
            "u": [e.user_id for e in rows],
            "rn": [e.resource_name for e in rows],
            "ri": [e.resource_id for e in rows],
            "et": [e.event_type for e in rows],
            "r": [e.reason for e in rows],
            "sa": [e.source_application_id for e in rows],
            "oa": [e.occurred_at for e in rows],
            "raw": [e.raw for e in rows],
            "st": [e.status.value for e in rows],
            "note": [e.note for e in rows],
        },
    )
    return len(result.all())


def absent(
    *,
    run_id: int,
    company_id: int,
    resource_name: str,
    resource_id: int,
    project_id: int | None,
) -> NormalisedEvent:
    """A resource no list of resync run `run_id` showed: a deletion to be confirmed."""
    digest = hashlib.sha256(f"{run_id}|{company_id}|{resource_name}|{resource_id}".encode())
    return NormalisedEvent(
        dedupe_key="ABSENT:" + digest.hexdigest()[:48],
        payload_version="resync",
        procore_event_id=None,
        company_id=company_id,
        project_id=project_id,
        user_id=None,
        resource_name=resource_name,
        resource_id=resource_id,
        event_type="delete",
        reason="absent",
        source_application_id=None,
        occurred_at=None,
        status=EventStatus.QUEUED,
        note=f"absent from every list of resync run {run_id}: deleted only if Procore says so",
        raw=orjson.dumps({"source": "resync", "run_id": run_id}).decode(),
    )
