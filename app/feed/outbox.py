"""The outbox: facts other than resource changes that downstream systems are told about
(a hook disabled by Procore or re-enabled, a resync finished, a write job's outcome, ...).

A fact is appended in the transaction that establishes it, so it exists exactly when the fact
does; readers take rows by id below the outbox's horizon (see `app.feed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed import Feed, writing
from app.feed.messages import EVENT_TYPES, Message, Source
from app.models import OutboxEntry

_APPEND = text(
    "INSERT INTO outbox (type, company_id, data) VALUES (:type, :company_id, CAST(:data AS jsonb))"
)


async def append(
    session: AsyncSession, event_type: str, *, company_id: int | None, data: dict[str, Any]
) -> None:
    """Record a fact in the caller's transaction (it is told downstream once committed)."""
    assert event_type in EVENT_TYPES, f"unknown event type {event_type}"
    await writing(session, Feed.OUTBOX)
    await session.execute(
        _APPEND,
        {"type": event_type, "company_id": company_id, "data": orjson.dumps(data).decode()},
    )


async def read(
    session: AsyncSession,
    after: int,
    upto: int,
    limit: int,
    *,
    company_ids: Sequence[int] | None = None,
    types: Sequence[str] | None = None,
) -> list[OutboxEntry]:
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.id > after, OutboxEntry.id <= upto)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if types is not None:
        query = query.where(OutboxEntry.type.in_(types))
    if company_ids is not None:
        # Facts about no company in particular go to every destination.
        query = query.where(
            OutboxEntry.company_id.is_(None) | OutboxEntry.company_id.in_(company_ids)
        )
    return list((await session.scalars(query)).all())


def message(row: OutboxEntry) -> Message:
    return Message(
        source=Source.OUTBOX,
        position=row.id,
        type=row.type,
        occurred_at=row.at,
        company_id=row.company_id,
        ordering_key=f"{row.type.partition('.')[0]}:{row.company_id}",
        data={**row.data, "company_id": row.company_id, "outbox_id": row.id},
    )
