"""The gates applied to Postgres: verdicts, outcomes, probes, release, expiry, operator actions.

The rules live in `app.gates.policy` (pure); this module reads a gate row, asks the policy, and
writes the answer back with conditional updates (`… WHERE state = …`, row locks, a probe lease)
so that any number of workers agree:

- `verdict` is asked once per scope in a job batch before any call; a parked verdict parks the
  events (with `gate_id`) without calling Procore.
- `record_outcomes` runs inside the transaction that applies a batch's outcomes: successes
  open the gates of their scope; 401/403 (and repeated 404s in a project) are signals. The Nth
  signal within the window parks the gate at once, diagnosis `pending`, first probe due now: no
  call leaks to the scope while the diagnosis runs.
- `tend` (an arq cron) runs due probes — one in flight per gate across all workers, by lease —
  releases the parked events of opened gates in received (ULID) order, in batches that wait
  for the previous batch to drain, and expires events parked past the retention.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.gates import policy, scopes
from app.gates.policy import Action, Diagnosis, GateView, Policy
from app.gates.probes import Finding, GateTarget, probe, remediation
from app.gates.scopes import Scope, Work, company_key, credential_key, holding_gate_sql, keys_sql
from app.logs import get_logger
from app.models import CredentialKind, Gate, GateScope, GateState
from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord, record_calls
from app.procore.tokens import CredentialRef
from app.runtime import Runtime
from app.settings import Settings
from app.subscriptions import schedule

log = get_logger(__name__)

_rng = random.Random()


def gate_policy(settings: Settings) -> Policy:
    return Policy(
        threshold=settings.park_threshold,
        window=timedelta(seconds=settings.park_window_seconds),
        probe_base_s=settings.probe_base_seconds,
        probe_cap_s=settings.probe_cap_seconds,
        retention=timedelta(days=settings.parked_retention_days),
        release_batch=settings.release_batch_size,
    )


# --- Verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateVerdict:
    open: bool
    # The gate holding the scope when it is not open (events record it as `gate_id`).
    gate_id: int | None = None
    reason: str | None = None
    # When a gate of the scope last opened: refusals seen before it are old news.
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
    """May the pipeline call Procore for this work now? (`app.gates.scopes` decides which
    gate holds it, the same subquery the receiver and the hand-offs run.)"""
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


# --- Outcomes --------------------------------------------------------------------------------


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


_OPEN_SCOPE = text(
    """
    UPDATE gates g SET state = 'open', signals = 0, window_started_at = NULL,
        opened_at = CASE WHEN g.state = 'parked' THEN now() ELSE g.opened_at END,
        next_probe_at = NULL, probe_attempt = 0, probe_locked_until = NULL
    FROM (
        SELECT id, state FROM gates
        WHERE scope_key = ANY(CAST(:keys AS text[])) AND state <> 'open'
          AND parked_by IS DISTINCT FROM 'operator'
    ) AS before
    WHERE g.id = before.id AND g.state <> 'open'
    RETURNING g.id, g.scope_key, g.scope, g.company_id, g.project_id, before.state AS was
    """
)


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
        opened = (await session.execute(_OPEN_SCOPE, {"keys": sorted(successes)})).all()
        for row in opened:
            log.info("gate.opened", gate_id=row.id, scope=row.scope_key, by="success")
            if row.was == GateState.PARKED.value:
                await schedule.gate_opened(
                    session, scope=row.scope, company_id=row.company_id, project_id=row.project_id
                )
    rules = gate_policy(settings)
    # Sorted: two batches locking the same gates lock them in the same order (no deadlock).
    for key in sorted(signals):
        await _apply_signal(session, key, signals[key], rules, now)


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


async def _ensure_gate(session: AsyncSession, scope: Scope) -> None:
    await session.execute(
        insert(Gate)
        .values(
            scope_key=scope.key,
            scope=scope.scope,
            credential_id=scope.credential_id,
            company_id=scope.company_id,
            project_id=scope.project_id,
            resource_name=scope.resource_name,
            state=GateState.OPEN,
        )
        .on_conflict_do_nothing(index_elements=[Gate.scope_key])
    )


_LOCK_GATE = text(
    """
    SELECT id, state, signals, window_started_at, parked_at, probe_attempt, next_probe_at,
        probe_path
    FROM gates WHERE scope_key = :key FOR UPDATE
    """
)


async def _apply_signal(
    session: AsyncSession, key: str, sig: _Signal, rules: Policy, now: datetime
) -> None:
    await _ensure_gate(session, sig.scope)
    row = (await session.execute(_LOCK_GATE, {"key": key})).one()
    view = _view(row)
    if view.state is GateState.PARKED:
        return
    park_now = sig.immediate is not None
    for _ in range(sig.count):
        decision = policy.on_signal(view, now, rules)
        view = decision.gate
        if Action.DIAGNOSE in decision.actions:
            park_now = True
            break
    values: dict[str, Any] = {
        "state": view.state,
        "signals": view.signals,
        "window_started_at": view.window_started_at,
        "last_signal_at": now,
        "last_status": sig.outcome.status,
        "body_excerpt": sig.outcome.message[:500] or None,
        "probe_path": sig.path,
    }
    if park_now:
        diagnosis = sig.immediate or Diagnosis.PENDING
        parked = policy.park(view, now, rules, _rng)
        values.update(
            state=GateState.PARKED,
            parked_at=now,
            parked_by="policy",
            probe_attempt=0,
            # A pending diagnosis runs at the next tick; a known one waits for its first probe.
            next_probe_at=now if diagnosis is Diagnosis.PENDING else parked.next_probe_at,
            diagnosis=diagnosis.value,
            remediation=remediation(
                diagnosis,
                company_id=sig.scope.company_id,
                project_id=sig.scope.project_id,
                resource_name=sig.scope.resource_name,
            ),
        )
        log.warning(
            "gate.parked",
            gate_id=row.id,
            scope=key,
            diagnosis=diagnosis.value,
            status=sig.outcome.status,
            signals=view.signals,
        )
    await session.execute(
        Gate.__table__.update().where(Gate.id == row.id).values(**values)  # type: ignore[attr-defined]
    )


def _view(row: Any) -> GateView:
    return GateView(
        state=GateState(row.state),
        signals=row.signals,
        window_started_at=row.window_started_at,
        parked_at=row.parked_at,
        probe_attempt=row.probe_attempt,
        next_probe_at=row.next_probe_at,
    )


# --- Connect ---------------------------------------------------------------------------------


_OPEN_CONNECTED = text(
    """
    UPDATE gates SET state = 'open', signals = 0, window_started_at = NULL, opened_at = now(),
        next_probe_at = NULL, probe_attempt = 0, probe_locked_until = NULL, parked_by = NULL
    WHERE state <> 'open' AND (
        scope_key = ANY(CAST(:keys AS text[]))
        -- credential gates holding events of these companies: the new connection serves them
        OR id IN (
            SELECT DISTINCT e.gate_id FROM events e JOIN gates g ON g.id = e.gate_id
            WHERE e.status = 'parked' AND g.scope = 'credential'
              AND e.company_id = ANY(CAST(:companies AS bigint[]))
        )
    )
    RETURNING id, scope_key
    """
)


async def connected(
    session: AsyncSession, *, credential_id: int, company_ids: Sequence[int]
) -> None:
    """An OAuth connect proved that `credential_id` reaches these companies: their gates and
    the credential's open (an install confirmed), and the parked events are released."""
    keys = [credential_key(credential_id), *(company_key(c) for c in company_ids)]
    rows = (
        await session.execute(_OPEN_CONNECTED, {"keys": keys, "companies": list(company_ids)})
    ).all()
    for row in rows:
        log.info("gate.opened", gate_id=row.id, scope=row.scope_key, by="connect")
    # The connect confirmed the install: sync the companies' hooks and backfill them.
    for company_id in sorted(set(company_ids)):
        await schedule.gate_opened(
            session, scope=GateScope.COMPANY.value, company_id=company_id, project_id=None
        )


# --- Probes ----------------------------------------------------------------------------------


_LEASE_DUE_PROBES = text(
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
        diagnosis,
        probe_path, probe_attempt, probe_locked_until, state, signals, window_started_at,
        parked_at, next_probe_at
    """
)

_LEASE_ONE = text(
    """
    UPDATE gates SET probe_locked_until = now() + make_interval(secs => :lease)
    WHERE id = :id AND (probe_locked_until IS NULL OR probe_locked_until < now())
    RETURNING id, scope, scope_key, credential_id, company_id, project_id, resource_name,
        diagnosis,
        probe_path, probe_attempt, probe_locked_until, state, signals, window_started_at,
        parked_at, next_probe_at
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


async def run_due_probes(runtime: Runtime, *, limit: int = 20) -> list[ProbeReport]:
    """Probe every parked gate whose next probe is due (one in flight per gate, by lease)."""
    async with runtime.sessions() as session, session.begin():
        rows = (
            await session.execute(
                _LEASE_DUE_PROBES,
                {"lease": runtime.settings.probe_lease_seconds, "limit": limit},
            )
        ).all()
    if not rows:
        return []
    return list(await asyncio.gather(*(_probe_leased(runtime, row) for row in rows)))


async def _probe_leased(runtime: Runtime, row: Any) -> ProbeReport:
    target = GateTarget(
        scope=GateScope(row.scope),
        company_id=row.company_id,
        project_id=row.project_id,
        resource_name=row.resource_name,
        diagnosis=row.diagnosis,
        probe_path=row.probe_path,
    )
    credential = await _credential_for(runtime, row)
    if credential is not None:
        # A probe asks Procore for real: a failure this process remembers for the hot path
        # (a refused token, say) must not answer for it, or a fixed credential stays parked.
        runtime.procore.tokens.forget(credential.id)
    calls: list[CallRecord] = []
    try:
        finding = await probe(runtime.procore, target, credential, calls)
    except Exception as exc:  # a probe must never take the tending loop down
        log.exception("gate.probe_failed", gate_id=row.id)
        finding = Finding(Diagnosis.UNREACHABLE, None, None, f"internal: {type(exc).__name__}")
    async with runtime.sessions() as session, session.begin():
        report = await _apply_finding(
            session, runtime.settings, row, finding, None if credential is None else credential.id
        )
        await record_calls(session, calls)
    if report.opened:
        metrics.probe("opened")
    elif finding.diagnosis is Diagnosis.UNREACHABLE:
        metrics.probe("error")
    else:
        metrics.probe("still_closed")
    return report


async def _credential_for(runtime: Runtime, row: Any) -> CredentialRef | None:
    if row.scope == GateScope.CREDENTIAL.value:
        async with runtime.sessions() as session:
            kind = (await session.execute(_CREDENTIAL_KIND, {"id": row.credential_id})).scalar()
        return None if kind is None else CredentialRef(row.credential_id, CredentialKind(kind))
    credential, _ = await runtime.procore.tokens.credential_for(row.company_id)
    return credential


_MOVE_PARKED = text(
    """
    UPDATE events SET gate_id = :to_gate
    WHERE gate_id = :from_gate AND status = 'parked'
    """
)


async def _apply_finding(
    session: AsyncSession,
    settings: Settings,
    row: Any,
    finding: Finding,
    credential_id: int | None,
) -> ProbeReport:
    """Write what a probe found, fenced by the probe's lease."""
    rules = gate_policy(settings)
    now = datetime.now(UTC)
    scope = GateScope(row.scope)
    fence = {"id": row.id, "lease": row.probe_locked_until}
    if finding.clear:
        await _update_fenced(
            session,
            fence,
            state=GateState.OPEN,
            signals=0,
            window_started_at=None,
            opened_at=now,
            next_probe_at=None,
            probe_attempt=0,
            last_probe_at=now,
            last_status=finding.status,
            diagnosis=Diagnosis.OK.value,
            remediation=None,
            parked_by=None,
        )
        log.info("gate.opened", gate_id=row.id, scope=row.scope_key, by="probe")
        # In the same transaction: the hooks sync and the backfill are rows a cron hands out.
        await schedule.gate_opened(
            session, scope=row.scope, company_id=row.company_id, project_id=row.project_id
        )
        return ProbeReport(row.id, True, finding.status, Diagnosis.OK.value, None, finding.message)

    at_fault = finding.at_fault or scope
    if at_fault is not scope and finding.diagnosis is not Diagnosis.UNREACHABLE:
        return await _escalate(session, settings, row, finding, at_fault, now, credential_id)

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
    later = policy.on_probe_failure(_view(row), now, rules, _rng)
    await _update_fenced(
        session,
        fence,
        probe_attempt=later.probe_attempt,
        next_probe_at=later.next_probe_at,
        last_probe_at=now,
        last_status=finding.status,
        body_excerpt=finding.message[:500] or None,
        diagnosis=diagnosis,
        remediation=text_for_operator,
    )
    log.info(
        "gate.probe_failed",
        gate_id=row.id,
        scope=row.scope_key,
        diagnosis=diagnosis,
        status=finding.status,
        next_probe_at=later.next_probe_at.isoformat() if later.next_probe_at else None,
    )
    return ProbeReport(row.id, False, finding.status, diagnosis, text_for_operator, finding.message)


async def _escalate(
    session: AsyncSession,
    settings: Settings,
    row: Any,
    finding: Finding,
    at_fault: GateScope,
    now: datetime,
    credential_id: int | None,
) -> ProbeReport:
    """The fault lies with another scope (a dead credential, an uninstalled company): park
    that gate, hand it this gate's parked events, and open this one."""
    rules = gate_policy(settings)
    here = Scope(
        GateScope(row.scope), row.company_id, row.project_id, row.resource_name, row.credential_id
    )
    fault = scopes.parent(here, at_fault, credential_id) or Scope(GateScope.COMPANY, row.company_id)
    key = fault.key
    await _ensure_gate(session, fault)
    target = (await session.execute(_LOCK_GATE, {"key": key})).one()
    parked = policy.park(_view(target), now, rules, _rng)
    fix = remediation(
        finding.diagnosis,
        company_id=fault.company_id,
        project_id=fault.project_id,
        resource_name=fault.resource_name,
    )
    await session.execute(
        Gate.__table__.update()  # type: ignore[attr-defined]
        .where(Gate.id == target.id)
        .values(
            state=GateState.PARKED,
            parked_at=target.parked_at or now,
            parked_by="policy",
            next_probe_at=parked.next_probe_at,
            probe_attempt=0,
            last_status=finding.status,
            body_excerpt=finding.message[:500] or None,
            diagnosis=finding.diagnosis.value,
            remediation=fix,
            # A tool's gate is probed with the call that was refused in the project.
            probe_path=target.probe_path or row.probe_path,
        )
    )
    await session.execute(_MOVE_PARKED, {"from_gate": row.id, "to_gate": target.id})
    await _update_fenced(
        session,
        {"id": row.id, "lease": row.probe_locked_until},
        state=GateState.OPEN,
        signals=0,
        window_started_at=None,
        next_probe_at=None,
        probe_attempt=0,
        last_probe_at=now,
        diagnosis=f"moved to {key}",
        remediation=None,
        parked_by=None,
    )
    log.warning(
        "gate.parked",
        gate_id=target.id,
        scope=key,
        diagnosis=finding.diagnosis.value,
        status=finding.status,
        from_gate=row.id,
    )
    return ProbeReport(
        target.id, False, finding.status, finding.diagnosis.value, fix, finding.message
    )


async def _update_fenced(session: AsyncSession, fence: dict[str, Any], **values: Any) -> None:
    values["probe_locked_until"] = None
    await session.execute(
        Gate.__table__.update()  # type: ignore[attr-defined]
        .where(Gate.id == fence["id"], Gate.probe_locked_until == fence["lease"])
        .values(**values)
    )


# --- Release and expiry ----------------------------------------------------------------------


_OPENED_WITH_PARKED = text(
    """
    SELECT g.id, g.company_id FROM gates g
    WHERE g.state <> 'parked'
      AND EXISTS (SELECT 1 FROM events e WHERE e.gate_id = g.id AND e.status = 'parked')
    """
)

_COMPANY_BACKLOG = text(
    """
    SELECT count(*) FROM events
    WHERE company_id = :company_id AND status IN ('queued', 'retrying', 'processing')
    """
)

# Released in received (ULID) order: `next_attempt_at` steps by a microsecond per rank, so the
# dispatcher (which takes due rows by next_attempt_at) hands them out in that order.
_RELEASE = text(
    """
    WITH picked AS (
        SELECT id, dedupe_key FROM events
        WHERE gate_id = :gate_id AND status = 'parked'
        ORDER BY dedupe_key
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), ranked AS (
        SELECT id, row_number() OVER (ORDER BY dedupe_key) AS rank FROM picked
    )
    UPDATE events e SET status = 'queued', gate_id = NULL, locked_until = NULL,
        next_attempt_at = now() + ranked.rank * interval '1 microsecond'
    FROM ranked WHERE e.id = ranked.id
    RETURNING e.id
    """
)

_EXPIRE = text(
    """
    UPDATE events SET status = 'dead', last_error = 'expired_while_parked', finished_at = now()
    WHERE id IN (
        SELECT id FROM events
        WHERE status = 'parked' AND received_at < now() - make_interval(secs => :seconds)
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def release_opened(runtime: Runtime) -> int:
    """Return parked events of opened gates to the queue, a batch per gate per tick, and only
    once the company's previous batch has drained (no stampede on Procore)."""
    batch = runtime.settings.release_batch_size
    released = 0
    async with runtime.sessions() as session, session.begin():
        gates = (await session.execute(_OPENED_WITH_PARKED)).all()
        for gate in gates:
            backlog = (
                (
                    await session.execute(_COMPANY_BACKLOG, {"company_id": gate.company_id})
                ).scalar_one()
                if gate.company_id is not None
                else 0
            )
            room = batch - int(backlog)
            if room <= 0:
                continue
            rows = (await session.execute(_RELEASE, {"gate_id": gate.id, "batch": room})).all()
            released += len(rows)
            if rows:
                log.info("gate.released", gate_id=gate.id, events=len(rows))
    return released


async def expire_parked(runtime: Runtime, *, batch: int = 1000) -> int:
    async with runtime.sessions() as session, session.begin():
        rows = (
            await session.execute(
                _EXPIRE,
                {"seconds": runtime.settings.parked_retention_days * 86400, "batch": batch},
            )
        ).all()
    if rows:
        log.warning("events.expired_while_parked", events=len(rows))
        metrics.events_expired(len(rows))
    return len(rows)


async def tend(runtime: Runtime) -> None:
    """One tick of gate upkeep (an arq cron): probes, release, expiry."""
    await run_due_probes(runtime)
    await release_opened(runtime)
    await expire_parked(runtime)


# --- Operator actions (admin API and CLI) -------------------------------------------------


async def confirm_install(runtime: Runtime, company_id: int) -> ProbeReport:
    """Probe the company now (never trust blindly); on success its gate opens and the parked
    events are released by the next tick."""
    async with runtime.sessions() as session, session.begin():
        await _ensure_gate(session, Scope(GateScope.COMPANY, company_id))
        gate_id = (
            await session.execute(
                text("SELECT id FROM gates WHERE scope_key = :k"), {"k": company_key(company_id)}
            )
        ).scalar_one()
        row = (
            await session.execute(
                _LEASE_ONE, {"id": gate_id, "lease": runtime.settings.probe_lease_seconds}
            )
        ).first()
    if row is None:
        return ProbeReport(gate_id, False, None, None, None, "a probe is already running")
    return await _probe_leased(runtime, row)


async def operator_park(session: AsyncSession, gate_id: int, *, reason: str) -> bool:
    """Park a gate by hand (no probes reopen it); False if there is no such gate."""
    result = await session.execute(
        text(
            """
            UPDATE gates SET state = 'parked', parked_by = 'operator', parked_at = now(),
                next_probe_at = NULL, probe_locked_until = NULL,
                diagnosis = 'operator', remediation = :reason
            WHERE id = :id RETURNING id
            """
        ),
        {"id": gate_id, "reason": reason},
    )
    return result.first() is not None


async def operator_unpark(session: AsyncSession, gate_id: int, *, reason: str) -> bool:
    """Open a gate by hand; its parked events are released; False if there is no such gate."""
    result = await session.execute(
        text(
            """
            UPDATE gates SET state = 'open', parked_by = NULL, signals = 0,
                window_started_at = NULL, opened_at = now(), next_probe_at = NULL,
                probe_attempt = 0, probe_locked_until = NULL,
                diagnosis = 'opened by operator', remediation = :reason
            WHERE id = :id RETURNING id, scope, company_id, project_id
            """
        ),
        {"id": gate_id, "reason": reason},
    )
    row = result.first()
    if row is None:
        return False
    await schedule.gate_opened(
        session, scope=row.scope, company_id=row.company_id, project_id=row.project_id
    )
    return True
