"""The gates' writers: one per transition, each writing the pure policy's decision.

Every change of a gate's state goes through one function here — a signal, a park (by the
policy, an escalation or an operator), a probe that still fails, an opening (a success, a
probe, a connect, an operator) — and each transition that downstream systems care about is
appended to `gate_transitions` in the same transaction (under `app.feed.writing`, so the
feed's readers never read past a transition still being committed).

The values written come from `app.gates.policy` (`GateView`s); the SQL only adds what must be
decided under concurrency: a row lock for signals, a probe's lease as a fence, `state <> …`
guards so that two workers opening the same gate write one transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.feed import Feed, writing
from app.gates import policy
from app.gates.policy import Diagnosis, GateView, Transition
from app.gates.scopes import Scope
from app.logs import get_logger
from app.models import Gate, GateState, GateTransition
from app.schedule import hooks as schedule

log = get_logger(__name__)

EXCERPT_CHARS = 500


async def append(
    session: AsyncSession,
    gate: Any,
    kind: Transition,
    *,
    diagnosis: str | None = None,
    remediation: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one transition of `gate` (a row with the gate's scope columns) to the feed."""
    await writing(session, Feed.GATES)
    await session.execute(
        insert(GateTransition).values(
            gate_id=gate.id,
            scope_key=gate.scope_key,
            scope=str(gate.scope),
            company_id=gate.company_id,
            project_id=gate.project_id,
            resource_name=gate.resource_name,
            kind=kind.value,
            diagnosis=diagnosis,
            remediation=remediation,
            detail=dict(detail or {}),
        )
    )


async def ensure(session: AsyncSession, scope: Scope) -> None:
    """The gate row of `scope` exists (open) from here on."""
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


_LOCK = text(
    """
    SELECT id, scope_key, scope, company_id, project_id, resource_name, state, signals,
        window_started_at, parked_at, probe_attempt, next_probe_at, probe_path, diagnosis,
        dormant_since, woken_at, last_probe_at
    FROM gates WHERE scope_key = :key FOR UPDATE
    """
)


async def lock(session: AsyncSession, scope: Scope) -> Any:
    """The gate row of `scope`, created if need be, locked for this transaction."""
    await ensure(session, scope)
    return (await session.execute(_LOCK, {"key": scope.key})).one()


def view(row: Any) -> GateView:
    return GateView(
        state=GateState(row.state),
        signals=row.signals,
        window_started_at=row.window_started_at,
        parked_at=row.parked_at,
        probe_attempt=row.probe_attempt,
        next_probe_at=row.next_probe_at,
        dormant_since=row.dormant_since,
        woken_at=row.woken_at,
    )


def _values(gate: GateView) -> dict[str, Any]:
    return {
        "state": gate.state,
        "signals": gate.signals,
        "window_started_at": gate.window_started_at,
        "parked_at": gate.parked_at,
        "probe_attempt": gate.probe_attempt,
        "next_probe_at": gate.next_probe_at,
        "dormant_since": gate.dormant_since,
        "woken_at": gate.woken_at,
    }


async def _update(session: AsyncSession, gate_id: int, **values: Any) -> None:
    await session.execute(
        Gate.__table__.update().where(Gate.id == gate_id).values(**values)  # type: ignore[attr-defined]
    )


# --- Signal and park -------------------------------------------------------------------------


async def signal(
    session: AsyncSession,
    row: Any,
    gate: GateView,
    *,
    now: datetime,
    status: int | None,
    message: str,
    path: str | None,
) -> None:
    """A locked gate took signals and stays unparked (`gate` is the policy's new view)."""
    await _update(
        session,
        row.id,
        **_values(gate),
        last_signal_at=now,
        last_status=status,
        body_excerpt=message[:EXCERPT_CHARS] or None,
        probe_path=path,
    )


async def park(
    session: AsyncSession,
    row: Any,
    gate: GateView,
    *,
    by: str,
    diagnosis: str,
    remediation: str,
    status: int | None = None,
    message: str = "",
    path: str | None = None,
    now: datetime | None = None,
) -> None:
    """Park a locked gate (`gate`: the policy's parked view), and say so in the feed."""
    seen: dict[str, Any] = {}
    if now is not None:
        # What Procore answered (an operator's park has no answer to keep).
        seen = {
            "last_signal_at": now,
            "last_status": status,
            "body_excerpt": message[:EXCERPT_CHARS] or None,
        }
    await _update(
        session,
        row.id,
        **_values(gate),
        **seen,
        parked_by=by,
        probe_locked_until=None,
        probe_path=path or row.probe_path,
        diagnosis=diagnosis,
        remediation=remediation,
    )
    if row.state != GateState.PARKED.value:
        await append(
            session,
            row,
            Transition.PARKED,
            diagnosis=diagnosis,
            remediation=remediation,
            detail={"by": by, "status": status},
        )
        log.warning("gate.parked", gate_id=row.id, scope=row.scope_key, diagnosis=diagnosis, by=by)
    elif diagnosis != row.diagnosis:
        await needs_admin(session, row, diagnosis, remediation)


async def needs_admin(session: AsyncSession, row: Any, diagnosis: str, remediation: str) -> None:
    if policy.needs_admin(row.diagnosis, Diagnosis(diagnosis)):
        await append(
            session, row, Transition.NEEDS_ADMIN, diagnosis=diagnosis, remediation=remediation
        )


# --- Probes ----------------------------------------------------------------------------------


async def probe_failed(
    session: AsyncSession,
    row: Any,
    gate: GateView,
    *,
    now: datetime,
    diagnosis: str,
    remediation: str,
    status: int | None,
    message: str,
) -> bool:
    """A probe found the gate's scope still closed; fenced by the probe's lease (False: the
    lease was lost, nothing written)."""
    written = await session.execute(
        Gate.__table__.update()  # type: ignore[attr-defined]
        .where(Gate.id == row.id, Gate.probe_locked_until == row.probe_locked_until)
        .values(
            probe_attempt=gate.probe_attempt,
            next_probe_at=gate.next_probe_at,
            dormant_since=gate.dormant_since,
            woken_at=gate.woken_at,
            probe_locked_until=None,
            last_probe_at=now,
            last_status=status,
            body_excerpt=message[:EXCERPT_CHARS] or None,
            diagnosis=diagnosis,
            remediation=remediation,
        )
        .returning(Gate.id)
    )
    if written.first() is None:
        return False
    if Diagnosis(diagnosis) is not Diagnosis.UNREACHABLE:
        await needs_admin(session, row, diagnosis, remediation)
    if gate.dormant_since is not None and row.dormant_since is None:
        await append(
            session,
            row,
            Transition.DORMANT,
            diagnosis=diagnosis,
            remediation=remediation,
            detail={"probes": gate.probe_attempt},
        )
        log.info("gate.dormant", gate_id=row.id, scope=row.scope_key, probes=gate.probe_attempt)
    return True


async def wake(session: AsyncSession, row: Any, gate: GateView, *, by: str) -> None:
    """A dormant gate woken by an outside signal (`gate`: the policy's woken view)."""
    await _update(
        session,
        row.id,
        dormant_since=gate.dormant_since,
        woken_at=gate.woken_at,
        next_probe_at=gate.next_probe_at,
    )
    await append(session, row, Transition.WOKEN, diagnosis=row.diagnosis, detail={"by": by})
    log.info("gate.woken", gate_id=row.id, scope=row.scope_key, by=by)


# --- Open ------------------------------------------------------------------------------------

# What an opened gate holds: the policy's view after a success, and nothing left of the fault.
_OPENED = policy.on_success(GateView(state=GateState.PARKED)).gate

_OPEN = """
    UPDATE gates g SET state = :state, signals = :signals,
        window_started_at = :window_started_at, parked_at = :parked_at,
        next_probe_at = :next_probe_at, probe_attempt = :probe_attempt,
        dormant_since = :dormant_since, woken_at = :woken_at,
        opened_at = CASE WHEN g.state = 'parked' THEN now() ELSE g.opened_at END,
        probe_locked_until = NULL, parked_by = NULL,
        last_probe_at = CASE WHEN :probed THEN now() ELSE g.last_probe_at END,
        last_status = COALESCE(:status, g.last_status),
        diagnosis = CASE WHEN g.state = 'parked' THEN :diagnosis ELSE g.diagnosis END,
        remediation = NULL
    FROM (SELECT id, state FROM gates WHERE {where}) AS before
    WHERE g.id = before.id AND g.state <> 'open'
    RETURNING g.id, g.scope_key, g.scope, g.company_id, g.project_id, g.resource_name,
        before.state AS was
"""
_OPEN_KEYS = text(
    _OPEN.format(
        where="scope_key = ANY(CAST(:keys AS text[])) AND state <> 'open'"
        " AND parked_by IS DISTINCT FROM 'operator'"
    )
)
_OPEN_IDS = text(_OPEN.format(where="id = ANY(CAST(:ids AS bigint[])) AND state <> 'open'"))
_OPEN_FENCED = text(
    _OPEN.format(
        where="id = :id AND state <> 'open' AND probe_locked_until IS NOT DISTINCT FROM :lease"
    )
)


_CONFIRMED_OPEN = text(
    """
    UPDATE gates SET probe_locked_until = NULL, last_probe_at = now(), last_status = :status
    WHERE id = :id AND probe_locked_until IS NOT DISTINCT FROM :lease
    RETURNING id, scope, company_id, project_id
    """
)


async def confirmed_open(
    session: AsyncSession, fence: tuple[int, datetime | None], *, status: int | None
) -> None:
    """A probe of a gate that was open anyway (an operator's check) found access: the lease
    ends, and the scope gets what an opening brings (its hooks sync and backfill)."""
    row = (
        await session.execute(
            _CONFIRMED_OPEN, {"id": fence[0], "lease": fence[1], "status": status}
        )
    ).first()
    if row is not None:
        await schedule.gate_opened(
            session, scope=str(row.scope), company_id=row.company_id, project_id=row.project_id
        )


async def open_gates(
    session: AsyncSession,
    *,
    by: str,
    keys: Sequence[str] = (),
    ids: Sequence[int] = (),
    fence: tuple[int, datetime | None] | None = None,
    status: int | None = None,
    diagnosis: str = Diagnosis.OK.value,
    moved_to: str | None = None,
    note: str | None = None,
) -> list[Any]:
    """Open gates — by key after a success (never one an operator parked), by id (connect,
    operator), or the one a probe holds the lease of (`fence`) — and hand the opened scopes
    their hooks sync and backfill. Returns the rows opened."""
    params: dict[str, Any] = {
        **_values(_OPENED),
        "probed": fence is not None,
        "status": status,
        "diagnosis": diagnosis,
    }
    if fence is not None:
        statement, params = _OPEN_FENCED, {**params, "id": fence[0], "lease": fence[1]}
    elif keys:
        statement, params = _OPEN_KEYS, {**params, "keys": sorted(set(keys))}
    elif ids:
        statement, params = _OPEN_IDS, {**params, "ids": sorted(set(ids))}
    else:
        return []
    rows = list((await session.execute(statement, params)).all())
    for row in rows:
        if row.was != GateState.PARKED.value:
            continue
        log.info("gate.opened", gate_id=row.id, scope=row.scope_key, by=by)
        if moved_to is not None:
            await append(session, row, Transition.MOVED, detail={"by": by, "to": moved_to})
            continue
        detail = {"by": by} if note is None else {"by": by, "note": note}
        await append(session, row, Transition.RELEASED, detail=detail)
        # In the same transaction: the hooks sync and the backfill are rows a cron hands out.
        await schedule.gate_opened(
            session, scope=str(row.scope), company_id=row.company_id, project_id=row.project_id
        )
    return rows
