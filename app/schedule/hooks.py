"""Requests for a hooks sync or a resync, written as rows in the caller's transaction.

The gates call `gate_opened` in the transaction that opens a gate; the periodic tick and the
operator surfaces call `request_sync`. Nothing here calls Procore: the rows are picked up by
the tick (`app.subscriptions.service.tend`), which hands them to workers after commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.logs import get_logger
from app.schedule import runs

log = get_logger(__name__)

_REQUEST_SYNC = text(
    """
    INSERT INTO company_hooks (company_id, sync_due_at, installed_at)
    SELECT c, now(), CASE WHEN CAST(:install AS boolean) THEN now() END
    FROM unnest(CAST(:ids AS bigint[])) AS c
    ON CONFLICT (company_id) DO UPDATE SET
        -- A new value even when one was due: a sync running now clears only the request it
        -- claimed, so this one is not lost.
        sync_due_at = now(),
        installed_at = COALESCE(company_hooks.installed_at, excluded.installed_at)
    RETURNING company_id, (xmax = 0) AS created
    """
)


async def request_sync(
    session: AsyncSession, company_ids: Iterable[int], *, install: bool = False
) -> list[int]:
    """Ask for a hooks sync of these companies; returns those seen for the first time."""
    ids = sorted(set(company_ids))
    if not ids:
        return []
    rows = (await session.execute(_REQUEST_SYNC, {"ids": ids, "install": install})).all()
    return [int(r.company_id) for r in rows if r.created]


async def gate_opened(
    session: AsyncSession, *, scope: str, company_id: int | None, project_id: int | None
) -> None:
    """A company gate opened (install confirmed): sync its hook and backfill what was missed
    while it was closed. A project gate opened: backfill that project."""
    if company_id is None:
        return
    if scope == "company":
        await request_sync(session, [company_id], install=True)
        run_id = await runs.request(session, company_id, reason="company_opened")
        log.info("subscriptions.requested", company_id=company_id, resync_run=run_id)
    elif scope == "project" and project_id is not None:
        run_id = await runs.request(
            session, company_id, project_id=project_id, reason="project_opened"
        )
        log.info(
            "resync.requested", company_id=company_id, project_id=project_id, resync_run=run_id
        )
