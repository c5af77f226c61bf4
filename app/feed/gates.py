"""The gates' transitions as a feed (`gate_transitions`: one row per transition, by id).

The table belongs to the gates; this module only reads it. Until it exists in the schema this
source yields nothing (`transitions_available`), and delivery skips it. Its writers must hold
`app.feed.writing(session, Feed.GATES)` in the transaction that inserts a transition, so that
readers never read past a transition still being committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed.messages import Message, Source

_AVAILABLE = text("SELECT to_regclass('gate_transitions') IS NOT NULL")

_READ = text(
    """
    SELECT id, gate_id, scope_key, scope, company_id, project_id, resource_name, kind,
           diagnosis, remediation, detail, at
    FROM gate_transitions
    WHERE id > :after AND id <= :upto
      AND (CAST(:companies AS bigint[]) IS NULL OR company_id = ANY(CAST(:companies AS bigint[])))
    ORDER BY id LIMIT :limit
    """
)


async def transitions_available(session: AsyncSession) -> bool:
    """Whether the schema has the gates' transition feed yet."""
    return bool((await session.execute(_AVAILABLE)).scalar())


async def read_transitions(
    session: AsyncSession,
    after: int,
    upto: int,
    limit: int,
    *,
    company_ids: Sequence[int] | None = None,
) -> list[Message]:
    """Gate transitions after `after` as messages (`gate.<kind>`); none while the table is
    not there."""
    if not await transitions_available(session):
        return []
    rows = await session.execute(
        _READ,
        {
            "after": after,
            "upto": upto,
            "limit": limit,
            "companies": None if company_ids is None else list(company_ids),
        },
    )
    return [message(dict(row)) for row in rows.mappings()]


def message(row: dict[str, Any]) -> Message:
    data = {
        "gate_id": row["gate_id"],
        "scope": str(row["scope"]),
        "scope_key": row["scope_key"],
        "company_id": row["company_id"],
        "project_id": row["project_id"],
        "resource_name": row["resource_name"],
        "diagnosis": row["diagnosis"],
        "remediation": row["remediation"],
        "detail": row.get("detail") or {},
        "transition_id": row["id"],
    }
    return Message(
        source=Source.GATES,
        position=int(row["id"]),
        type=f"gate.{row['kind']}",
        occurred_at=row["at"],
        company_id=row["company_id"],
        ordering_key=f"gate:{row['gate_id']}",
        data=data,
    )
