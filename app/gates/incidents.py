"""Update-pending: many projects of one installed company refused at once are one incident.

An app update or reinstall resets the service account's permitted projects (FACTS.md §3):
healthy projects of an installed company all answer 403 at once. Each project's gate parks
(it holds that project's work, and is released as soon as that project is re-added), but once
`UPDATE_PENDING_PROJECTS` of them are parked for no project access while the company itself
is not, they are diagnosed together: the projects' gates say `update_pending`, and the
company's gate — open, never parked for this — carries the one incident and its list. The
feed tells it once per change of the list (`needs_admin`, the list in `detail`), and
`released` when the last project is back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.gates import policy, transitions
from app.gates.diagnosis import remediation, update_pending_remediation
from app.gates.policy import Diagnosis, Transition
from app.gates.scopes import Scope
from app.logs import get_logger
from app.models import Gate, GateScope, GateState

log = get_logger(__name__)

_LOST = text(
    """
    SELECT id, project_id FROM gates
    WHERE company_id = :company AND scope = 'project' AND state = 'parked'
      AND diagnosis = ANY(CAST(:diagnoses AS text[]))
    ORDER BY project_id
    """
)

# A project gate another transaction holds is skipped (no lock waits under the company's
# lock): that transaction reviews the company itself when it is done.
_MARK = text(
    """
    UPDATE gates SET diagnosis = :diagnosis, remediation = :remediation
    WHERE id IN (
        SELECT id FROM gates WHERE id = :id AND diagnosis IS DISTINCT FROM :diagnosis
        FOR UPDATE SKIP LOCKED
    )
    """
)

_DIAGNOSES = [Diagnosis.NO_PROJECT_ACCESS.value, Diagnosis.UPDATE_PENDING.value]


async def review(session: AsyncSession, company_id: int | None, *, threshold: int) -> None:
    """A project of `company_id` was parked or released: is (or is still) an update pending?"""
    if company_id is None:
        return
    company = await transitions.lock(session, Scope(GateScope.COMPANY, company_id))
    lost = (await session.execute(_LOST, {"company": company_id, "diagnoses": _DIAGNOSES})).all()
    projects = [int(r.project_id) for r in lost]
    pending = policy.update_pending(
        len(projects),
        company_parked=company.state == GateState.PARKED.value,
        threshold=threshold,
    )
    was_pending = company.diagnosis == Diagnosis.UPDATE_PENDING.value
    if pending:
        for row in lost:
            await session.execute(
                _MARK,
                {
                    "id": row.id,
                    "diagnosis": Diagnosis.UPDATE_PENDING.value,
                    "remediation": remediation(
                        Diagnosis.UPDATE_PENDING, company_id=company_id, project_id=row.project_id
                    ),
                },
            )
        await _incident(session, company, projects)
    elif was_pending:
        await _resolved(session, company, projects)


async def _incident(session: AsyncSession, company: Any, projects: list[int]) -> None:
    fix = update_pending_remediation(int(company.company_id), projects)
    before = (
        await session.execute(
            text("SELECT remediation FROM gates WHERE id = :id"), {"id": company.id}
        )
    ).scalar()
    if before == fix:
        return
    await _set(session, company.id, Diagnosis.UPDATE_PENDING.value, fix)
    await transitions.append(
        session,
        company,
        Transition.NEEDS_ADMIN,
        diagnosis=Diagnosis.UPDATE_PENDING.value,
        remediation=fix,
        detail={"projects": projects},
    )
    log.warning("gate.update_pending", company_id=company.company_id, projects=len(projects))


async def _resolved(session: AsyncSession, company: Any, projects: list[int]) -> None:
    """Fewer projects than the threshold are left: those keep their own diagnosis; the
    incident ends when none is left."""
    if projects:
        await _set(
            session,
            company.id,
            Diagnosis.UPDATE_PENDING.value,
            update_pending_remediation(int(company.company_id), projects),
        )
        return
    await _set(session, company.id, None, None)
    await transitions.append(
        session,
        company,
        Transition.RELEASED,
        diagnosis=Diagnosis.UPDATE_PENDING.value,
        detail={"by": "probe", "incident": "resolved"},
    )
    log.info("gate.update_resolved", company_id=company.company_id)


async def _set(session: AsyncSession, gate_id: int, diagnosis: str | None, fix: str | None) -> None:
    await session.execute(
        Gate.__table__.update()  # type: ignore[attr-defined]
        .where(Gate.id == gate_id)
        .values(diagnosis=diagnosis, remediation=fix)
    )
