"""Verdicts: may this work call Procore now? One question per piece of work, answered by the
holding-gate subquery of `app.gates.scopes` (the one the receiver and the hand-offs run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.gates.scopes import Work, holding_gate_sql, keys_sql


@dataclass(frozen=True, slots=True)
class GateVerdict:
    open: bool
    # The gate holding the work when it is not open (events record it as `gate_id`).
    gate_id: int | None = None
    reason: str | None = None
    # When a gate of the work's scopes last opened: refusals seen before it are old news.
    opened_at: datetime | None = None


OPEN = GateVerdict(open=True)

# The fragments are app.gates.scopes' own, over bind parameters.
_VERDICT = text(
    f"""
    SELECT held.id, held.reason, (
        SELECT max(opened_at) FROM gates
        WHERE scope_key = ANY({
        keys_sql(
            credential="CAST(:credential AS bigint)",
            company="CAST(:company AS bigint)",
            project="CAST(:project AS bigint)",
            resource="CAST(:resource AS text)",
        )
    })
    ) AS opened_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({
        holding_gate_sql(
            credential=":credential", company=":company", project=":project", resource=":resource"
        )
    }) AS held ON true
    """  # noqa: S608
)


async def verdict(session: AsyncSession, work: Work) -> GateVerdict:
    """May the pipeline call Procore for this work now?"""
    row = (
        await session.execute(
            _VERDICT,
            {
                "credential": work.credential_id,
                "company": work.company_id,
                "project": work.project_id,
                "resource": work.resource_name,
            },
        )
    ).one()
    if row.id is None:
        return GateVerdict(open=True, opened_at=row.opened_at)
    return GateVerdict(open=False, gate_id=row.id, reason=row.reason)
