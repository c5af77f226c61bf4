"""The `resync_runs` rows: requests, leases and cursors. SQL only; no Procore calls.

`request` is called inside the transaction that decided a resync is needed (a gate opening,
a first install, an operator), so the request survives any crash after it. One unfinished run
per scope: asking again while one is pending or running joins it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_REQUEST = text(
    """
    INSERT INTO resync_runs (company_id, project_id, resource_name, reason, status)
    VALUES (:company_id, :project_id, :resource_name, :reason, 'pending')
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
_ACTIVE = text(
    """
    SELECT id FROM resync_runs
    WHERE company_id = :company_id
      AND COALESCE(project_id, 0) = COALESCE(CAST(:project_id AS bigint), 0)
      AND COALESCE(resource_name, '') = COALESCE(CAST(:resource_name AS text), '')
      AND status IN ('pending', 'running')
    """
)


async def request(
    session: AsyncSession,
    company_id: int,
    *,
    reason: str,
    project_id: int | None = None,
    resource_name: str | None = None,
) -> int:
    """The id of the unfinished run for this scope, created if there is none."""
    params = {
        "company_id": company_id,
        "project_id": project_id,
        "resource_name": resource_name,
        "reason": reason,
    }
    created = (await session.execute(_REQUEST, params)).scalar()
    if created is not None:
        return int(created)
    return int((await session.execute(_ACTIVE, params)).scalar_one())


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    company_id: int
    project_id: int | None
    resource_name: str | None
    reason: str
    status: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    cursor: dict[str, Any] | None

    @property
    def progress(self) -> dict[str, Any]:
        parts: list[dict[str, Any]] = (self.cursor or {}).get("parts", [])
        return {
            "parts": len(parts),
            "parts_done": sum(1 for p in parts if p.get("done")),
            "pages": sum(int(p.get("pages", 0)) for p in parts),
            "listed": sum(int(p.get("listed", 0)) for p in parts),
            "written": sum(int(p.get("written", 0)) for p in parts),
            # Absent from every list: handed to the pipeline, deleted only on Procore's 404.
            "absent": sum(int(p.get("absent", 0)) for p in parts),
            "total": sum(int(p.get("total") or 0) for p in parts),
            "calls": int((self.cursor or {}).get("calls", 0)),
            "rate_limited": int((self.cursor or {}).get("rate_limited", 0)),
        }


_COLUMNS = """
    id, company_id, project_id, resource_name, reason, status, attempts, created_at,
    started_at, finished_at, last_error, cursor
"""


async def get(session: AsyncSession, run_id: int) -> RunView | None:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM resync_runs WHERE id = :id"),  # noqa: S608
            {"id": run_id},
        )
    ).first()
    return None if row is None else RunView(*row)


async def of_company(session: AsyncSession, company_id: int, *, limit: int = 20) -> list[RunView]:
    rows = (
        await session.execute(
            text(
                f"SELECT {_COLUMNS} FROM resync_runs WHERE company_id = :c"  # noqa: S608
                " ORDER BY id DESC LIMIT :limit"
            ),
            {"c": company_id, "limit": limit},
        )
    ).all()
    return [RunView(*row) for row in rows]
