"""Signals: what Procore's answers (and an OAuth connect) tell the gates.

`record_outcomes` runs inside the transaction that applies a batch's outcomes: successes open
the gates of their work's scopes; refusals are signals against the gate `policy.signalled`
names. The Nth signal within the window parks the gate at once, diagnosis `pending`, first
probe due now: no call leaks to the scope while the diagnosis runs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.gates import policy, scopes, transitions
from app.gates.diagnosis import remediation
from app.gates.policy import Action, Diagnosis, Policy
from app.gates.scopes import Scope, Work
from app.models import GateState
from app.procore.answers import Outcome, OutcomeKind
from app.schedule import hooks as schedule
from app.settings import Settings

_rng = random.Random()


@dataclass(frozen=True, slots=True)
class ScopeOutcome:
    """One classified answer (or a refusal before any call) for a piece of work."""

    work: Work
    outcome: Outcome
    # The call that was made; probes ask it again to see a permission fixed.
    path: str | None = None


@dataclass(slots=True)
class _Signal:
    scope: Scope
    outcome: Outcome
    path: str | None
    count: int = 0
    # Park at once, with this diagnosis, without waiting for the threshold.
    immediate: Diagnosis | None = None


async def record_outcomes(
    session: AsyncSession,
    settings: Settings,
    outcomes: Sequence[ScopeOutcome],
    *,
    now: datetime | None = None,
) -> None:
    """Feed a batch's outcomes to the gates of their scopes (in the batch's transaction)."""
    now = now or datetime.now(UTC)
    successes: set[str] = set()
    signals: dict[str, _Signal] = {}
    for item in outcomes:
        _sort(item, successes, signals)
    if successes:
        await transitions.open_gates(session, by="success", keys=sorted(successes))
    rules = policy.from_settings(settings)
    # Sorted: two batches locking the same gates lock them in the same order (no deadlock).
    for key in sorted(signals):
        await _apply_signal(session, signals[key], rules, now)


async def record_outcome(
    session: AsyncSession,
    work: Work,
    outcome: Outcome,
    *,
    settings: Settings,
    path: str | None = None,
) -> None:
    await record_outcomes(session, settings, [ScopeOutcome(work, outcome, path)])


def _sort(item: ScopeOutcome, successes: set[str], signals: dict[str, _Signal]) -> None:
    if item.outcome.kind is OutcomeKind.OK:
        successes.update(scopes.keys(item.work))
        return
    found = policy.signalled(item.work, item.outcome)
    if found is None:
        return
    key = found.scope.key
    entry = signals.get(key)
    if entry is None:
        entry = signals[key] = _Signal(found.scope, item.outcome, item.path)
    entry.count += 1
    entry.outcome = item.outcome
    entry.immediate = entry.immediate or found.immediate


async def _apply_signal(session: AsyncSession, sig: _Signal, rules: Policy, now: datetime) -> None:
    row = await transitions.lock(session, sig.scope)
    gate = transitions.view(row)
    if gate.state is GateState.PARKED:
        return
    park_now = sig.immediate is not None
    for _ in range(sig.count):
        decision = policy.on_signal(gate, now, rules)
        gate = decision.gate
        if Action.DIAGNOSE in decision.actions:
            park_now = True
            break
    status, message = sig.outcome.status, sig.outcome.message
    if not park_now:
        await transitions.signal(
            session, row, gate, now=now, status=status, message=message, path=sig.path
        )
        return
    diagnosis = sig.immediate or Diagnosis.PENDING
    await transitions.park(
        session,
        row,
        policy.park(gate, now, rules, _rng, pending=diagnosis is Diagnosis.PENDING),
        by="policy",
        diagnosis=diagnosis.value,
        remediation=remediation(
            diagnosis,
            company_id=sig.scope.company_id,
            project_id=sig.scope.project_id,
            resource_name=sig.scope.resource_name,
        ),
        status=status,
        message=message,
        path=sig.path,
        now=now,
    )


_HELD_BY_CREDENTIALS = text(
    """
    SELECT id FROM gates
    WHERE state <> 'open' AND (
        scope_key = ANY(CAST(:keys AS text[]))
        -- credential gates holding events of these companies: the new connection serves them
        OR id IN (
            SELECT DISTINCT e.gate_id FROM events e JOIN gates g ON g.id = e.gate_id
            WHERE e.status = 'parked' AND g.scope = 'credential'
              AND e.company_id = ANY(CAST(:companies AS bigint[]))
        )
    )
    """
)


async def connected(
    session: AsyncSession, *, credential_id: int, company_ids: Sequence[int]
) -> None:
    """An OAuth connect proved that `credential_id` reaches these companies: their gates and
    the credential's open (an install confirmed), and the parked events are released."""
    keys = [scopes.credential_key(credential_id), *(scopes.company_key(c) for c in company_ids)]
    ids = (
        await session.execute(_HELD_BY_CREDENTIALS, {"keys": keys, "companies": list(company_ids)})
    ).scalars()
    opened = await transitions.open_gates(session, by="connect", ids=list(ids))
    asked = {
        r.company_id for r in opened if r.scope == "company" and r.was == GateState.PARKED.value
    }
    # The connect confirmed the install: sync the companies' hooks and backfill them.
    for company_id in sorted(set(company_ids) - asked):
        await schedule.gate_opened(session, scope="company", company_id=company_id, project_id=None)
