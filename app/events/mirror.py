"""The resource mirror (`resources`): conditional upserts keyed by (company, resource, id).

- Newest wins: a fetch never overwrites a row with a newer Procore `updated_at` (for
  resources without one, the later fetch wins), so fetches may finish in any order.
- Deletes are soft (`deleted_at`); a delete event for a resource never seen leaves a
  tombstone, so a consumer of the change cursor learns of it too. A fetch answered after the
  deletion (a restore) revives the row; one sent before it does not.
- `change_seq` takes the next value of `resource_change_seq` only when the row really
  changes (data, or deleted or not), so "everything changed since cursor C" is exact; a new
  row also keeps it as `first_change_seq`. The feed itself (and its lock) is `app.feed`.
- Rows are written in key order, so two jobs writing overlapping resources cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import feed
from app.feed import Feed
from app.registry import resources


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One fetched resource, as Procore showed it at `fetched_at` (when the call was sent)."""

    company_id: int
    resource_name: str
    resource_id: int
    project_id: int | None
    data: dict[str, Any]
    procore_updated_at: datetime | None
    fetched_at: datetime

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.company_id, self.resource_name, self.resource_id)


@dataclass(frozen=True, slots=True)
class Deletion:
    company_id: int
    resource_name: str
    resource_id: int
    project_id: int | None
    deleted_at: datetime

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.company_id, self.resource_name, self.resource_id)


_UPSERT = text(
    """
    INSERT INTO resources AS r
        (company_id, resource_name, resource_id, project_id, data, procore_updated_at,
         fetched_at, change_seq, first_change_seq)
    SELECT v.company_id, v.resource_name, v.resource_id, v.project_id, CAST(v.data AS jsonb),
           v.updated_at, v.fetched_at, v.seq, v.seq
    FROM (
        SELECT u.*, nextval('resource_change_seq') AS seq
        FROM unnest(
            CAST(:company_id AS bigint[]), CAST(:resource_name AS text[]),
            CAST(:resource_id AS bigint[]), CAST(:project_id AS bigint[]), CAST(:data AS text[]),
            CAST(:updated_at AS timestamptz[]), CAST(:fetched_at AS timestamptz[])
        ) WITH ORDINALITY AS u(company_id, resource_name, resource_id, project_id, data,
                               updated_at, fetched_at, n)
        ORDER BY u.n
    ) v
    ORDER BY v.n
    ON CONFLICT (company_id, resource_name, resource_id) DO UPDATE SET
        data = excluded.data,
        project_id = COALESCE(excluded.project_id, r.project_id),
        procore_updated_at = COALESCE(excluded.procore_updated_at, r.procore_updated_at),
        fetched_at = GREATEST(excluded.fetched_at, r.fetched_at),
        -- A revived row stays deleted if what was fetched is not newer than the deletion.
        deleted_at = CASE
            WHEN r.deleted_at IS NOT NULL
             AND COALESCE(excluded.procore_updated_at, excluded.fetched_at) <= r.deleted_at
            THEN r.deleted_at
        END,
        change_seq = CASE
            WHEN r.data IS DISTINCT FROM excluded.data
              OR r.deleted_at IS DISTINCT FROM (CASE
                WHEN r.deleted_at IS NOT NULL
                 AND COALESCE(excluded.procore_updated_at, excluded.fetched_at) <= r.deleted_at
                THEN r.deleted_at
              END)
            THEN excluded.change_seq
            ELSE r.change_seq
        END
    WHERE CASE
        WHEN excluded.procore_updated_at IS NOT NULL AND r.procore_updated_at IS NOT NULL
        THEN excluded.procore_updated_at >= r.procore_updated_at
        ELSE excluded.fetched_at >= r.fetched_at
    END
    """
)

_SOFT_DELETE = text(
    """
    INSERT INTO resources AS r
        (company_id, resource_name, resource_id, project_id, deleted_at, change_seq,
         first_change_seq)
    SELECT v.company_id, v.resource_name, v.resource_id, v.project_id, v.deleted_at, v.seq, v.seq
    FROM (
        SELECT u.*, nextval('resource_change_seq') AS seq
        FROM unnest(
            CAST(:company_id AS bigint[]), CAST(:resource_name AS text[]),
            CAST(:resource_id AS bigint[]), CAST(:project_id AS bigint[]),
            CAST(:deleted_at AS timestamptz[])
        ) WITH ORDINALITY AS u(company_id, resource_name, resource_id, project_id, deleted_at, n)
        ORDER BY u.n
    ) v
    ORDER BY v.n
    ON CONFLICT (company_id, resource_name, resource_id) DO UPDATE SET
        deleted_at = excluded.deleted_at,
        project_id = COALESCE(r.project_id, excluded.project_id),
        change_seq = excluded.change_seq
    WHERE r.deleted_at IS NULL
    """
)


async def upsert(session: AsyncSession, snapshots: Sequence[Snapshot]) -> None:
    if not snapshots:
        return
    # The change feed reads only below a horizon: see app.feed.
    await feed.writing(session, Feed.RESOURCES)
    rows = sorted(snapshots, key=lambda s: s.key)
    await session.execute(
        _UPSERT,
        {
            "company_id": [s.company_id for s in rows],
            "resource_name": [s.resource_name for s in rows],
            "resource_id": [s.resource_id for s in rows],
            "project_id": [s.project_id for s in rows],
            "data": [orjson.dumps(s.data).decode() for s in rows],
            "updated_at": [s.procore_updated_at for s in rows],
            "fetched_at": [s.fetched_at for s in rows],
        },
    )


async def soft_delete(session: AsyncSession, deletions: Sequence[Deletion]) -> None:
    if not deletions:
        return
    # The change feed reads only below a horizon: see app.feed.
    await feed.writing(session, Feed.RESOURCES)
    rows = sorted(deletions, key=lambda d: d.key)
    await session.execute(
        _SOFT_DELETE,
        {
            "company_id": [d.company_id for d in rows],
            "resource_name": [d.resource_name for d in rows],
            "resource_id": [d.resource_id for d in rows],
            "project_id": [d.project_id for d in rows],
            "deleted_at": [d.deleted_at for d in rows],
        },
    )


def procore_updated_at(data: dict[str, Any], field: str | None = "updated_at") -> datetime | None:
    """Procore's `updated_at` (ISO-8601) from a resource body, if it has a readable one."""
    value = None if field is None else data.get(field)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class Absent(Enum):
    """A `show_by_list` answer that does not hold the wanted resource (as a show's 404)."""

    NOT_LISTED = "not listed"


def resource_body(
    kind: resources.ResourceType, parsed: Any, resource_id: int
) -> dict[str, Any] | Absent | None:
    """The resource object of a show answer (unwrapped as the registry says); NOT_LISTED for
    a list-by-id answer without it; None for an answer that is no resource object."""
    body = resources.unwrap(kind, parsed, resource_id)
    if body is None and kind.show_by_list and isinstance(parsed, list | dict):
        return Absent.NOT_LISTED
    return body if isinstance(body, dict) else None
