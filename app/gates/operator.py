"""Operator actions (admin API and CLI): confirm an install, park or open a gate by hand.

They write through the same transitions as the policy (`app.gates.transitions`), so the feed
and the gate rows say the same whoever acted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.gates import incidents, policy, probes, transitions
from app.gates.deps import GatesDeps
from app.gates.probes import ProbeReport
from app.gates.scopes import Scope
from app.models import GateScope

_GATE = text(
    """
    SELECT id, scope_key, scope, company_id, project_id, resource_name, state, signals,
        window_started_at, parked_at, probe_attempt, next_probe_at, probe_path, diagnosis,
        dormant_since, woken_at, last_probe_at
    FROM gates WHERE id = :id FOR UPDATE
    """
)


async def confirm_install(deps: GatesDeps, company_id: int) -> ProbeReport:
    """Probe the company now (never trust blindly); on success its gate opens and the parked
    events are released by the next tick."""
    scope = Scope(GateScope.COMPANY, company_id)
    async with deps.sessions() as session, session.begin():
        await transitions.ensure(session, scope)
        gate_id = (
            await session.execute(
                text("SELECT id FROM gates WHERE scope_key = :k"), {"k": scope.key}
            )
        ).scalar_one()
    return await probes.probe_now(deps, gate_id)


async def operator_park(session: AsyncSession, gate_id: int, *, reason: str) -> bool:
    """Park a gate by hand (no probes reopen it); False if there is no such gate."""
    row = (await session.execute(_GATE, {"id": gate_id})).first()
    if row is None:
        return False
    await transitions.park(
        session,
        row,
        policy.park_by_operator(transitions.view(row), datetime.now(UTC)),
        by="operator",
        diagnosis=policy.Diagnosis.OPERATOR.value,
        remediation=reason,
    )
    return True


async def operator_unpark(
    session: AsyncSession, gate_id: int, *, reason: str, threshold: int
) -> bool:
    """Open a gate by hand; its parked events are released; False if there is no such gate.
    `threshold` is UPDATE_PENDING_PROJECTS (a project opened may end an update-pending)."""
    row = (await session.execute(_GATE, {"id": gate_id})).first()
    if row is None:
        return False
    await transitions.open_gates(
        session, by="operator", ids=[gate_id], diagnosis="opened by operator", note=reason
    )
    if policy.project_lost(row.diagnosis):
        await incidents.review(session, row.company_id, threshold=threshold)
    return True
