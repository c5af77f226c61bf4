"""The mirror's change feed: `resources` rows in `change_seq` order, deleted ones included.

A row changed again later shows up again at its new position, with its newest state: a
consumer that follows the feed sees every resource's latest state, in change order, and never
an older state of a resource after a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.messages import (
    RESOURCE_CREATED,
    RESOURCE_DELETED,
    RESOURCE_UPDATED,
    Message,
    Source,
)
from app.models import Resource


def changed(
    after: int,
    upto: int,
    *,
    company_ids: Sequence[int] | None = None,
    resource_names: Sequence[str] | None = None,
) -> Select[Resource]:
    """Rows changed after `after`, up to a horizon, in change order."""
    query = (
        select(Resource)
        .where(Resource.change_seq > after, Resource.change_seq <= upto)
        .order_by(Resource.change_seq)
    )
    if company_ids is not None:
        query = query.where(Resource.company_id.in_(company_ids))
    if resource_names is not None:
        query = query.where(Resource.resource_name.in_(resource_names))
    return query


async def read(
    session: AsyncSession,
    after: int,
    upto: int,
    limit: int,
    *,
    company_ids: Sequence[int] | None = None,
    resource_names: Sequence[str] | None = None,
) -> list[Resource]:
    query = changed(after, upto, company_ids=company_ids, resource_names=resource_names)
    return list((await session.scalars(query.limit(limit))).all())


def change_type(row: Resource, after: int) -> str:
    """For a consumer whose position was `after`: deleted; created if the resource first
    appeared past that position (the consumer never heard of it); else updated."""
    if row.deleted_at is not None:
        return RESOURCE_DELETED
    if row.first_change_seq is not None and row.first_change_seq > after:
        return RESOURCE_CREATED
    return RESOURCE_UPDATED


def message(row: Resource, after: int) -> Message:
    data: dict[str, Any] = {
        "company_id": row.company_id,
        "project_id": row.project_id,
        "resource_name": row.resource_name,
        "resource_id": row.resource_id,
        "change_seq": row.change_seq,
        "procore_updated_at": None
        if row.procore_updated_at is None
        else row.procore_updated_at.isoformat(),
        "deleted_at": None if row.deleted_at is None else row.deleted_at.isoformat(),
    }
    return Message(
        source=Source.RESOURCES,
        position=row.change_seq,
        type=change_type(row, after),
        occurred_at=row.deleted_at or row.fetched_at,
        company_id=row.company_id,
        ordering_key=f"resource:{row.company_id}:{row.resource_name}:{row.resource_id}",
        data=data,
        object=row.data,
    )
