"""Probes: the parked gates' checks, one in flight per gate across all workers (by lease).

`run_due_probes` (from the tending cron) leases the gates whose probe is due, asks Procore
(`app.gates.diagnosis`: the cheapest call that tells whether the fault is still there), and
writes what it found: the gate opens; or it stays parked with its next probe later (capped);
or the fault is a parent scope's, whose gate parks and takes the parked work.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.gates import incidents, policy, scopes, transitions
from app.gates.deps import GatesDeps
from app.gates.diagnosis import Finding, GateTarget, probe, remediation
from app.gates.policy import Diagnosis
from app.gates.scopes import Scope
from app.logs import get_logger
from app.models import CredentialKind, GateScope, GateState
from app.procore.calls import CallRecord, record_calls
from app.procore.tokens import CredentialRef
from app.settings import Settings

log = get_logger(__name__)

_rng = random.Random()

_LEASE_DUE = text(
    """
    UPDATE gates SET probe_locked_until = now() + make_interval(secs => :lease)
    WHERE id IN (
        SELECT id FROM gates
        WHERE state = 'parked' AND next_probe_at <= now()
          AND (probe_locked_until IS NULL OR probe_locked_until < now())
        ORDER BY next_probe_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, scope, scope_key, credential_id, company_id, project_id, resource_name,
        diagnosis, probe_path, probe_attempt, probe_locked_until, state, signals,
        window_started_at, parked_at, next_probe_at, dormant_since, woken_at
    """
)

_LEASE_ONE = text(
    """
    UPDATE gates SET probe_locked_until = now() + make_interval(secs => :lease)
    WHERE id = :id AND (probe_locked_until IS NULL OR probe_locked_until < now())
    RETURNING id, scope, scope_key, credential_id, company_id, project_id, resource_name,
        diagnosis, probe_path, probe_attempt, probe_locked_until, state, signals,
        window_started_at, parked_at, next_probe_at, dormant_since, woken_at
    """
)

_CREDENTIAL_KIND = text("SELECT kind FROM credentials WHERE id = :id")


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What a probe (or an operator's confirm-install, which probes at once) found."""

    gate_id: int | None
    opened: bool
    status: int | None
    diagnosis: str | None
    remediation: str | None
    message: str = ""


# Calls probes and diagnoses made in the last hour, across all workers (the call audit).
_SPENT = text(
    """
    SELECT count(*) FROM procore_calls
    WHERE purpose IN ('probe', 'diagnose') AND at > now() - interval '1 hour'
    """
)


async def run_due_probes(deps: GatesDeps, *, limit: int = 20) -> list[ProbeReport]:
    """Probe parked gates whose next probe is due (one in flight per gate, by lease), the
    most overdue first, within PROBE_BUDGET_PER_HOUR across all gates: a probe that does not
    fit waits for the next tick."""
    async with deps.sessions() as session, session.begin():
        spent = int((await session.execute(_SPENT)).scalar_one())
        room = min(limit, deps.settings.probe_budget_per_hour - spent)
        if room <= 0:
            metrics.probe("deferred")
            return []
        rows = (
            await session.execute(
                _LEASE_DUE, {"lease": deps.settings.probe_lease_seconds, "limit": room}
            )
        ).all()
    if not rows:
        return []
    return list(await asyncio.gather(*(_probe_leased(deps, row) for row in rows)))


async def probe_now(deps: GatesDeps, gate_id: int) -> ProbeReport:
    """Probe one gate at once (an operator asked), unless a probe of it is running."""
    async with deps.sessions() as session, session.begin():
        row = (
            await session.execute(
                _LEASE_ONE, {"id": gate_id, "lease": deps.settings.probe_lease_seconds}
            )
        ).first()
    if row is None:
        return ProbeReport(gate_id, False, None, None, None, "a probe is already running")
    return await _probe_leased(deps, row)


async def _probe_leased(deps: GatesDeps, row: Any) -> ProbeReport:
    target = GateTarget(
        scope=GateScope(row.scope),
        company_id=row.company_id,
        project_id=row.project_id,
        resource_name=row.resource_name,
        diagnosis=row.diagnosis,
        probe_path=row.probe_path,
    )
    credential = await _credential_for(deps, row)
    if credential is not None:
        # A probe asks Procore for real: a failure this process remembers for the hot path
        # (a refused token, say) must not answer for it, or a fixed credential stays parked.
        deps.procore.tokens.forget(credential.id)
    calls: list[CallRecord] = []
    try:
        finding = await probe(deps.procore, target, credential, calls)
    except Exception as exc:  # a probe must never take the tending loop down
        log.exception("gate.probe_failed", gate_id=row.id)
        finding = Finding(Diagnosis.UNREACHABLE, None, None, f"internal: {type(exc).__name__}")
    async with deps.sessions() as session, session.begin():
        report = await apply_finding(
            session,
            deps.settings,
            row,
            finding,
            credential_id=None if credential is None else credential.id,
        )
        await record_calls(session, calls)
    if report.opened:
        metrics.probe("opened")
    elif finding.diagnosis is Diagnosis.UNREACHABLE:
        metrics.probe("error")
    else:
        metrics.probe("still_closed")
    return report


async def _credential_for(deps: GatesDeps, row: Any) -> CredentialRef | None:
    """The credential a probe calls as: the gate's own, or the one the token service says
    serves the company (the same choice the pipeline makes)."""
    if row.scope == GateScope.CREDENTIAL.value:
        async with deps.sessions() as session:
            kind = (await session.execute(_CREDENTIAL_KIND, {"id": row.credential_id})).scalar()
        return None if kind is None else CredentialRef(row.credential_id, CredentialKind(kind))
    credential, _ = await deps.procore.tokens.credential_for(row.company_id)
    return credential


async def apply_finding(
    session: AsyncSession,
    settings: Settings,
    row: Any,
    finding: Finding,
    *,
    credential_id: int | None,
    now: datetime | None = None,
) -> ProbeReport:
    """Write what a probe found, fenced by the probe's lease."""
    now = now or datetime.now(UTC)
    if finding.clear:
        fence = (row.id, row.probe_locked_until)
        opened = await transitions.open_gates(
            session, by="probe", fence=fence, status=finding.status
        )
        if not opened and row.state == GateState.OPEN.value:
            await transitions.confirmed_open(session, fence, status=finding.status)
        if opened and policy.project_lost(row.diagnosis):
            await incidents.review(
                session, row.company_id, threshold=settings.update_pending_projects
            )
        return ProbeReport(row.id, True, finding.status, Diagnosis.OK.value, None, finding.message)
    scope = GateScope(row.scope)
    at_fault = finding.at_fault or scope
    if at_fault is not scope and finding.diagnosis is not Diagnosis.UNREACHABLE:
        fault = scopes.parent(_scope_of(row), at_fault, credential_id)
        if fault is not None:
            return await _escalate(session, settings, row, finding, fault, now)
    diagnosis = (
        finding.diagnosis.value
        if finding.diagnosis is not Diagnosis.UNREACHABLE
        else (row.diagnosis if row.diagnosis != Diagnosis.PENDING else Diagnosis.UNREACHABLE)
    )
    text_for_operator = remediation(
        diagnosis,
        company_id=row.company_id,
        project_id=row.project_id,
        resource_name=row.resource_name,
    )
    later = policy.on_probe_failure(
        transitions.view(row), now, policy.from_settings(settings), _rng
    )
    await transitions.probe_failed(
        session,
        row,
        later,
        now=now,
        diagnosis=diagnosis,
        remediation=text_for_operator,
        status=finding.status,
        message=finding.message,
    )
    if scope is GateScope.PROJECT and policy.project_lost(diagnosis):
        await incidents.review(session, row.company_id, threshold=settings.update_pending_projects)
    log.info(
        "gate.probe_failed",
        gate_id=row.id,
        scope=row.scope_key,
        diagnosis=diagnosis,
        status=finding.status,
        next_probe_at=later.next_probe_at.isoformat() if later.next_probe_at else None,
    )
    return ProbeReport(row.id, False, finding.status, diagnosis, text_for_operator, finding.message)


def _scope_of(row: Any) -> Scope:
    return Scope(
        GateScope(row.scope), row.company_id, row.project_id, row.resource_name, row.credential_id
    )


_MOVE_PARKED = text(
    """
    UPDATE events SET gate_id = :to_gate
    WHERE gate_id = :from_gate AND status = 'parked'
    """
)


async def _escalate(
    session: AsyncSession,
    settings: Settings,
    row: Any,
    finding: Finding,
    fault: Scope,
    now: datetime,
) -> ProbeReport:
    """The fault lies with a parent scope (a dead credential, an uninstalled company, a tool
    refused everywhere, a project left out): park that gate, hand it this gate's parked
    events, and open this one."""
    target = await transitions.lock(session, fault)
    fix = remediation(
        finding.diagnosis,
        company_id=fault.company_id,
        project_id=fault.project_id,
        resource_name=fault.resource_name,
    )
    await transitions.park(
        session,
        target,
        policy.park(
            transitions.view(target), now, policy.from_settings(settings), _rng, pending=False
        ),
        by="policy",
        diagnosis=finding.diagnosis.value,
        remediation=fix,
        status=finding.status,
        message=finding.message,
        # A tool's gate is probed with the call that was refused in the project.
        path=target.probe_path or row.probe_path,
        now=now,
    )
    await session.execute(_MOVE_PARKED, {"from_gate": row.id, "to_gate": target.id})
    if fault.scope is GateScope.PROJECT and policy.project_lost(finding.diagnosis.value):
        await incidents.review(
            session, fault.company_id, threshold=settings.update_pending_projects
        )
    await transitions.open_gates(
        session,
        by="probe",
        fence=(row.id, row.probe_locked_until),
        status=finding.status,
        diagnosis=f"moved to {fault.key}",
        moved_to=fault.key,
    )
    return ProbeReport(
        target.id, False, finding.status, finding.diagnosis.value, fix, finding.message
    )
