"""What the setup and embedded pages show about one company (or one of its projects).

Read-only queries; the pages turn these values into plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    CompanyCredential,
    Event,
    EventStatus,
    Gate,
    GateScope,
    GateState,
    Resource,
)


@dataclass(frozen=True, slots=True)
class GateView:
    id: int
    scope: GateScope
    state: GateState
    project_id: int | None
    diagnosis: str | None
    remediation: str | None
    parked_at: datetime | None
    parked_by: str | None
    next_probe_at: datetime | None
    last_probe_at: datetime | None
    parked_events: int


@dataclass(frozen=True, slots=True)
class RecentEvent:
    id: int
    resource_name: str | None
    resource_id: int | None
    event_type: str | None
    status: EventStatus
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CompanyState:
    company_id: int
    company_name: str | None
    # When a credential last proved access to the company (a successful call).
    proved_at: datetime | None
    # Gates that are not open (parked or suspect) for the company, its projects and the
    # credential serving it.
    gates: list[GateView]
    events_by_status: dict[str, int]
    last_received_at: datetime | None
    project_id: int | None = None
    # EVENTS_RETENTION_DAYS: finished events older than this are gone, so the counts and the
    # last change cover this many days (0: every event ever received).
    kept_days: float = 0.0
    recent_events: list[RecentEvent] = field(default_factory=list)
    # resource_name → mirrored (not deleted) rows, for the project when one is asked for.
    mirrored: dict[str, int] = field(default_factory=dict)

    @property
    def parked_events(self) -> int:
        return self.events_by_status.get(EventStatus.PARKED.value, 0)

    @property
    def parked(self) -> list[GateView]:
        return [g for g in self.gates if g.state is GateState.PARKED]

    def gates_for(self, scope: GateScope) -> list[GateView]:
        return [g for g in self.parked if g.scope is scope]

    @property
    def not_installed(self) -> bool:
        return any(g.diagnosis == "not_installed" for g in self.gates_for(GateScope.COMPANY))


async def company_state(
    session: AsyncSession,
    company_id: int,
    *,
    project_id: int | None = None,
    recent: int = 0,
    kept_days: float = 0.0,
) -> CompanyState:
    served = (
        await session.execute(
            select(CompanyCredential).where(CompanyCredential.company_id == company_id)
        )
    ).scalar_one_or_none()
    scope = [Gate.company_id == company_id]
    if served is not None:
        scope.append(Gate.credential_id == served.credential_id)
    gates = await _closed_gates(session, or_(*scope), project_id)

    events = select(Event.status, func.count()).where(Event.company_id == company_id)
    last = select(func.max(Event.received_at)).where(Event.company_id == company_id)
    if project_id is not None:
        events = events.where(Event.project_id == project_id)
        last = last.where(Event.project_id == project_id)
    by_status = {
        status.value: int(n) for status, n in await session.execute(events.group_by(Event.status))
    }
    state = CompanyState(
        company_id=company_id,
        company_name=None if served is None else served.company_name,
        proved_at=None if served is None else served.proved_at,
        gates=gates,
        events_by_status=by_status,
        last_received_at=(await session.execute(last)).scalar_one_or_none(),
        project_id=project_id,
        kept_days=kept_days,
    )
    if recent:
        state.recent_events.extend(await _recent(session, company_id, project_id, recent))
    if project_id is not None:
        state.mirrored.update(await _mirrored(session, company_id, project_id))
    return state


async def _closed_gates(
    session: AsyncSession, scope: object, project_id: int | None
) -> list[GateView]:
    parked = (
        select(func.count())
        .where(Event.gate_id == Gate.id, Event.status == EventStatus.PARKED)
        .scalar_subquery()
    )
    query = (
        select(Gate, parked)
        .where(scope, Gate.state != GateState.OPEN)  # type: ignore[arg-type]
        .order_by(Gate.scope, Gate.project_id.nulls_first(), Gate.id)
    )
    if project_id is not None:
        # A project's view: gates over the whole company, plus that project's own.
        query = query.where(or_(Gate.project_id.is_(None), Gate.project_id == project_id))
    return [
        GateView(
            id=gate.id,
            scope=gate.scope,
            state=gate.state,
            project_id=gate.project_id,
            diagnosis=gate.diagnosis,
            remediation=gate.remediation,
            parked_at=gate.parked_at,
            parked_by=gate.parked_by,
            next_probe_at=gate.next_probe_at,
            last_probe_at=gate.last_probe_at,
            parked_events=int(n),
        )
        for gate, n in await session.execute(query)
    ]


async def _recent(
    session: AsyncSession, company_id: int, project_id: int | None, limit: int
) -> list[RecentEvent]:
    query = (
        select(
            Event.id,
            Event.resource_name,
            Event.resource_id,
            Event.event_type,
            Event.status,
            Event.received_at,
        )
        .where(Event.company_id == company_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    return [RecentEvent(*row) for row in await session.execute(query)]


async def _mirrored(session: AsyncSession, company_id: int, project_id: int) -> dict[str, int]:
    query = (
        select(Resource.resource_name, func.count())
        .where(
            Resource.company_id == company_id,
            Resource.project_id == project_id,
            Resource.deleted_at.is_(None),
        )
        .group_by(Resource.resource_name)
        .order_by(Resource.resource_name)
    )
    return {name: int(n) for name, n in await session.execute(query)}
