"""Wakes: the outside signals that end a dormant gate's sleep with one probe, now.

A dormant gate makes no call (Procore counts every 403, FACTS.md §8). It wakes on:
- a new webhook of its scope: the receiver parks it under the gate (`app.gates.scopes`), and
  the tending loop sees parked work received after the gate fell asleep (at most once per
  probe cap: a storm of webhooks is one probe, not one per event);
- the service account's `/companies` sweep (install discovery, one call for every company)
  listing the gate's company;
- an operator (confirm-install probes at once) or an OAuth connect (opens the gates).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.gates import policy, transitions
from app.gates.deps import GatesDeps
from app.settings import Settings

_COLUMNS = """
    g.id, g.scope_key, g.scope, g.company_id, g.project_id, g.resource_name, g.state,
    g.signals, g.window_started_at, g.parked_at, g.probe_attempt, g.next_probe_at,
    g.probe_path, g.diagnosis, g.dormant_since, g.woken_at, g.last_probe_at
"""

_NEW_WORK = text(
    f"""
    SELECT {_COLUMNS} FROM gates g
    WHERE g.dormant_since IS NOT NULL AND g.state = 'parked'
      AND EXISTS (
        SELECT 1 FROM events e
        WHERE e.gate_id = g.id AND e.status = 'parked' AND e.received_at > g.dormant_since)
    ORDER BY g.id
    LIMIT :limit
    FOR UPDATE OF g SKIP LOCKED
    """  # noqa: S608
)

_LISTED = text(
    f"""
    SELECT {_COLUMNS} FROM gates g
    WHERE g.dormant_since IS NOT NULL AND g.state = 'parked' AND g.scope = 'company'
      AND g.company_id = ANY(CAST(:companies AS bigint[]))
    ORDER BY g.id
    FOR UPDATE OF g SKIP LOCKED
    """  # noqa: S608
)


async def wake_on_webhooks(deps: GatesDeps, *, limit: int = 100) -> int:
    """Wake dormant gates that parked new work (a webhook) since they fell asleep."""
    rules = policy.from_settings(deps.settings)
    now = datetime.now(UTC)
    woken = 0
    async with deps.sessions() as session, session.begin():
        for row in (await session.execute(_NEW_WORK, {"limit": limit})).all():
            gate = policy.wake(transitions.view(row), now, rules, last_probe_at=row.last_probe_at)
            if gate is not None:
                await transitions.wake(session, row, gate, by="webhook")
                woken += 1
    return woken


async def companies_installed(
    session: AsyncSession, settings: Settings, company_ids: Iterable[int]
) -> int:
    """The `/companies` sweep listed these companies as installed: their dormant gates
    probe now (the probe, never the list, opens them)."""
    rules = policy.from_settings(settings)
    now = datetime.now(UTC)
    woken = 0
    rows = (await session.execute(_LISTED, {"companies": sorted(set(company_ids))})).all()
    for row in rows:
        gate = policy.wake(
            transitions.view(row), now, rules, last_probe_at=row.last_probe_at, forced=True
        )
        if gate is not None:
            await transitions.wake(session, row, gate, by="companies_sweep")
            woken += 1
    return woken
