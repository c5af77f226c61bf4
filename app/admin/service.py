"""Operator work over Postgres, shared by the admin API and the CLI (one implementation, two
edges). Functions take a session and flush; the edge commits — except bulk replay, which
commits batch by batch so a large replay neither holds one huge transaction nor starts over
when interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from arq.connections import ArqRedis
from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app import audit, cursor, feed
from app.admin.schemas import (
    ActionOut,
    ActionPage,
    CallOut,
    CredentialOut,
    CredentialRemovedOut,
    EventDetail,
    EventOut,
    EventPage,
    GateDetail,
    GateOut,
    GatePage,
    GateTransitionOut,
    GateTransitionPage,
    ProbeOut,
    ResourceOut,
    ResourcePage,
    SummaryOut,
    WorkersOut,
)
from app.connect import service as connect
from app.db import SessionFactory
from app.feed import Feed, changes
from app.feed import gates as gate_feed
from app.gates import scopes
from app.gates import service as gates
from app.models import (
    FINAL_STATUSES,
    AdminAction,
    CredentialKind,
    Event,
    EventStatus,
    Gate,
    GateScope,
    GateState,
    ProcoreCall,
    WorkerHeartbeat,
    WriteJob,
)
from app.procore import revocation
from app.procore.client import ProcoreClient
from app.procore.tokens import retire_tokens
from app.schedule import runs
from app.settings import Settings
from app.setup import links
from app.subscriptions import service as subscriptions
from app.subscriptions.views import ResyncRunOut, SyncOut
from app.writes import outcomes as write_outcomes
from app.writes import policy as writes_policy
from app.writes import service as writes
from app.writes.views import (
    JobAccepted,
    JobDetail,
    JobEventOut,
    JobEventPage,
    JobOut,
    JobPage,
)

# The listings' cursor kinds (app.cursor), named once for the router's schema too.
GATES_CURSOR = "gates"
EVENTS_CURSOR = "events"
ACTIONS_CURSOR = "actions"
RESOURCES_CURSOR = "resources"
TRANSITIONS_CURSOR = "gate-transitions"
JOBS_CURSOR = "jobs"
JOB_EVENTS_CURSOR = "job-events"

MAX_PAGE = cursor.MAX_PAGE


class AdminDeps(Protocol):
    """What the admin actions that call Procore use: confirming an install (a probe, app.gates)
    and syncing a company's hook (app.subscriptions), so the union of what those flows take.
    The edges (the admin API, the CLI) pass the process's Runtime, which has all of these."""

    sessions: SessionFactory
    settings: Settings
    procore: ProcoreClient
    queue: ArqRedis


# Final events an operator may send back to the queue. `done`, `ignored` (caused by this app)
# and `unsupported` need `force`: replaying them is rarely what anyone wants.
REPLAYABLE = frozenset({EventStatus.DEAD, EventStatus.SKIPPED})
REPLAYABLE_WITH_FORCE = frozenset({EventStatus.DONE, EventStatus.IGNORED, EventStatus.UNSUPPORTED})

_REPLAY_VALUES: dict[str, Any] = {
    "status": EventStatus.QUEUED,
    "attempts": 0,
    "next_attempt_at": func.now(),
    "locked_until": None,
    "finished_at": None,
}


def utc(moment: datetime | None) -> datetime | None:
    """Query parameters without a zone are taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# --- gates ----------------------------------------------------------------------------------


def _gates_query() -> Select[Any]:
    parked = (
        select(
            func.count().label("parked_events"),
            func.extract("epoch", func.now() - func.min(Event.received_at)).label("oldest_age"),
        )
        .where(Event.gate_id == Gate.id, Event.status == EventStatus.PARKED)
        .lateral("parked")
    )
    return select(Gate, parked.c.parked_events, parked.c.oldest_age).outerjoin(parked, true())


def _gate_fields(gate: Gate, parked_events: int | None, oldest_age: Any) -> dict[str, Any]:
    fields = {
        name: getattr(gate, name)
        for name in GateOut.model_fields
        if name not in ("parked_events", "oldest_parked_age_s")
    }
    fields["parked_events"] = int(parked_events or 0)
    fields["oldest_parked_age_s"] = None if oldest_age is None else round(float(oldest_age), 1)
    return fields


async def list_gates(
    session: AsyncSession,
    *,
    state: Sequence[GateState] = (),
    scope: GateScope | None = None,
    company_id: int | None = None,
    after: str | None = None,
    limit: int = 100,
) -> GatePage:
    query = _gates_query()
    if state:
        query = query.where(Gate.state.in_(state))
    if scope is not None:
        query = query.where(Gate.scope == scope)
    if company_id is not None:
        query = query.where(Gate.company_id == company_id)
    page, next_cursor = await cursor.read_page(
        session, query, Gate.id, kind=GATES_CURSOR, after=after, limit=limit
    )
    items = [GateOut(**_gate_fields(gate, n, age)) for gate, n, age in page]
    return GatePage(items=items, next_cursor=next_cursor)


async def get_gate(session: AsyncSession, gate_id: int, *, calls: int = 20) -> GateDetail | None:
    row = (await session.execute(_gates_query().where(Gate.id == gate_id))).first()
    if row is None:
        return None
    gate, parked_events, oldest_age = row
    recent = await _recent_calls(session, gate, calls)
    return GateDetail(**_gate_fields(gate, parked_events, oldest_age), recent_calls=recent)


async def _recent_calls(session: AsyncSession, gate: Gate, limit: int) -> list[CallOut]:
    query = select(ProcoreCall).order_by(ProcoreCall.at.desc(), ProcoreCall.id.desc())
    if gate.scope is GateScope.CREDENTIAL:
        query = query.where(ProcoreCall.credential_id == gate.credential_id)
    else:
        query = query.where(ProcoreCall.company_id == gate.company_id)
        if gate.scope is GateScope.PROJECT:
            query = query.where(ProcoreCall.project_id == gate.project_id)
    rows = (await session.scalars(query.limit(min(limit, MAX_PAGE)))).all()
    return [CallOut.model_validate(call) for call in rows]


async def confirm_install(deps: AdminDeps, company_id: int, *, actor: str) -> ProbeOut:
    """Probe the company at once (never trust blindly); the probe opens its gates if it
    succeeds. The action and what the probe found are audited."""
    report = await gates.confirm_install(deps, company_id)
    result = ProbeOut(
        company_id=company_id,
        gate_id=report.gate_id,
        opened=report.opened,
        status=report.status,
        diagnosis=report.diagnosis,
        remediation=report.remediation,
        message=report.message,
    )
    async with deps.sessions() as session, session.begin():
        await audit.record(
            session,
            actor=actor,
            action="confirm_install",
            target=f"company:{company_id}",
            detail=result.model_dump(mode="json"),
        )
    return result


class GateAction(StrEnum):
    PARK = "park"
    UNPARK = "unpark"


async def operate_gate(
    session: AsyncSession,
    settings: Settings,
    gate_id: int,
    action: GateAction,
    *,
    reason: str,
    actor: str,
) -> GateOut | None:
    """Park or unpark by hand, in the caller's transaction; None if there is no such gate."""
    if await session.get(Gate, gate_id) is None:
        return None
    if action is GateAction.PARK:
        done = await gates.operator_park(session, gate_id, reason=reason)
    else:
        done = await gates.operator_unpark(
            session, gate_id, reason=reason, threshold=settings.update_pending_projects
        )
    if not done:
        return None
    await audit.record(
        session, actor=actor, action=f"gate_{action}", target=f"gate:{gate_id}",
        detail={"reason": reason},
    )  # fmt: skip
    row = (
        await session.execute(
            _gates_query().where(Gate.id == gate_id).execution_options(populate_existing=True)
        )
    ).one()
    return GateOut(**_gate_fields(*row))


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    status: Sequence[EventStatus] = ()
    company_id: int | None = None
    project_id: int | None = None
    resource_name: str | None = None
    gate_id: int | None = None
    received_since: datetime | None = None
    received_until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.status:
            found.append(Event.status.in_(self.status))
        if self.company_id is not None:
            found.append(Event.company_id == self.company_id)
        if self.project_id is not None:
            found.append(Event.project_id == self.project_id)
        if self.resource_name is not None:
            found.append(Event.resource_name == self.resource_name)
        if self.gate_id is not None:
            found.append(Event.gate_id == self.gate_id)
        if self.received_since is not None:
            found.append(Event.received_at >= utc(self.received_since))
        if self.received_until is not None:
            found.append(Event.received_at < utc(self.received_until))
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "status": [s.value for s in self.status],
            "company_id": self.company_id,
            "project_id": self.project_id,
            "resource_name": self.resource_name,
            "gate_id": self.gate_id,
            "received_since": _iso(self.received_since),
            "received_until": _iso(self.received_until),
        }


def _iso(moment: datetime | None) -> str | None:
    moment = utc(moment)
    return None if moment is None else moment.isoformat()


Order = Literal["desc", "asc"]


async def list_events(
    session: AsyncSession,
    where: EventFilter,
    *,
    after: str | None = None,
    limit: int = 100,
    order: Order = "desc",
) -> EventPage:
    """A page of events, newest first by default; `next_cursor` continues after its last row
    (rows received meanwhile never shift a page: the cursor is an id, not an offset)."""
    query = select(Event).options(defer(Event.raw)).where(*where.conditions())
    # The cursor is a position: either order continues from it.
    page, next_cursor = await cursor.read_page(
        session,
        query,
        Event.id,
        kind=EVENTS_CURSOR,
        after=after,
        limit=limit,
        newest_first=order == "desc",
    )
    return EventPage(items=[EventOut.model_validate(e) for (e,) in page], next_cursor=next_cursor)


async def get_event(session: AsyncSession, event_id: int) -> EventDetail | None:
    event = await session.get(Event, event_id)
    return None if event is None else EventDetail.model_validate(event)


class ReplayRefused(Exception):
    """The event exists but may not be replayed (`status`: what it is now)."""

    def __init__(self, status: EventStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def replayable(force: bool) -> frozenset[EventStatus]:
    return REPLAYABLE | REPLAYABLE_WITH_FORCE if force else REPLAYABLE


async def replay_event(
    session: AsyncSession, event_id: int, *, force: bool, actor: str
) -> EventOut | None:
    """Back to `queued` with its attempts reset (the dispatcher hands it out at its next tick).

    None: no such event. ReplayRefused: it is not final, or needs `force`. A conditional
    UPDATE, so a worker finishing the event at the same moment cannot be overwritten."""
    statuses = replayable(force)
    replayed = (
        await session.scalars(
            update(Event)
            .where(Event.id == event_id, Event.status.in_(statuses))
            .values(**_REPLAY_VALUES)
            .returning(Event)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
    ).one_or_none()
    if replayed is None:
        status = (
            await session.execute(select(Event.status).where(Event.id == event_id))
        ).scalar_one_or_none()
        if status is None:
            return None
        raise ReplayRefused(status, _refusal(status))
    await audit.record(
        session,
        actor=actor,
        action="event_replay",
        target=f"event:{event_id}",
        detail={"force": force},
    )
    return EventOut.model_validate(replayed)


def _refusal(status: EventStatus) -> str:
    if status in REPLAYABLE_WITH_FORCE:
        return f"event is {status.value}: replaying it needs force=true"
    if status is EventStatus.PARKED:
        return "event is parked: it is released when its gate opens (confirm-install or unpark)"
    return f"event is {status.value}, not final: it is still being processed"


def check_replay_statuses(statuses: Sequence[EventStatus], *, force: bool) -> None:
    """Raise ValueError naming a status that is not final, ReplayRefused for one that needs
    force."""
    allowed = replayable(force)
    for status in statuses:
        if status not in FINAL_STATUSES:
            raise ValueError(f"status {status.value} is not final: nothing to replay")
        if status not in allowed:
            raise ReplayRefused(status, f"replaying {status.value} events needs force")


async def replay_matching(
    sessions: SessionFactory,
    where: EventFilter,
    *,
    force: bool,
    actor: str,
    max_events: int | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Replay every event matching `where` (default: dead ones), in id order, one committed
    batch at a time; `progress` is called with the running total. Returns how many."""
    statuses = list(where.status) or [EventStatus.DEAD]
    check_replay_statuses(statuses, force=force)
    conditions = replace(where, status=statuses).conditions()
    total, after = 0, 0
    while max_events is None or total < max_events:
        size = batch_size if max_events is None else min(batch_size, max_events - total)
        picked = (
            select(Event.id)
            .where(*conditions, Event.id > after)
            .order_by(Event.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
        async with sessions() as session, session.begin():
            ids = (
                await session.scalars(
                    update(Event)
                    .where(Event.id.in_(picked))
                    .values(**_REPLAY_VALUES)
                    .returning(Event.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if ids:
                await audit.record(
                    session,
                    actor=actor,
                    action="events_replay",
                    target=f"events:{min(ids)}..{max(ids)}",
                    detail={"filter": where.describe(), "force": force, "count": len(ids)},
                )
        if not ids:
            break
        total += len(ids)
        after = max(ids)
        if progress is not None:
            progress(total)
        if len(ids) < size:
            break
    return total


async def count_matching(session: AsyncSession, where: EventFilter) -> int:
    query = select(func.count()).select_from(Event).where(*where.conditions())
    return int((await session.execute(query)).scalar_one())


# --- summary --------------------------------------------------------------------------------

_QUEUE = text(
    """
    SELECT count(*) AS depth,
           coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0) AS oldest_due_s
    FROM events
    WHERE status IN ('queued', 'retrying', 'processing') AND next_attempt_at <= now()
      AND (status <> 'processing' OR locked_until < now())
    """
)


async def summary(session: AsyncSession, *, worker_stale_seconds: float) -> SummaryOut:
    by_status = {status.value: 0 for status in EventStatus}
    for status, n in await session.execute(
        select(Event.status, func.count()).group_by(Event.status)
    ):
        by_status[status.value] = int(n)
    by_state = {state.value: 0 for state in GateState}
    by_scope: dict[str, dict[str, int]] = {
        scope.value: {state.value: 0 for state in GateState} for scope in GateScope
    }
    for scope, state, n in await session.execute(
        select(Gate.scope, Gate.state, func.count()).group_by(Gate.scope, Gate.state)
    ):
        by_state[state.value] += int(n)
        by_scope[scope.value][state.value] = int(n)
    queue = (await session.execute(_QUEUE)).one()
    forbidden = {
        str(company): int(n)
        for company, n in await session.execute(
            select(ProcoreCall.company_id, func.count())
            .where(
                # 403 written into the statement, not bound: the partial index of the day's
                # 403s matches only the literal (migration 0009).
                ProcoreCall.status == literal_column("403"),
                ProcoreCall.at > func.now() - timedelta(days=1),
                ProcoreCall.company_id.is_not(None),
            )
            .group_by(ProcoreCall.company_id)
        )
    }
    beats = (
        await session.execute(
            select(
                func.count().filter(
                    WorkerHeartbeat.seen_at > func.now() - timedelta(seconds=worker_stale_seconds)
                ),
                func.extract("epoch", func.now() - func.max(WorkerHeartbeat.seen_at)),
            )
        )
    ).one()
    return SummaryOut(
        events_by_status=by_status,
        gates_by_state=by_state,
        gates_by_scope_and_state=by_scope,
        forbidden_24h_by_company=forbidden,
        parked_events=by_status[EventStatus.PARKED.value],
        queue_depth=int(queue.depth),
        oldest_due_age_s=round(float(queue.oldest_due_s), 1),
        workers=WorkersOut(
            alive=int(beats[0]),
            newest_heartbeat_age_s=None if beats[1] is None else round(float(beats[1]), 1),
        ),
    )


# --- the audit trail -----------------------------------------------------------------------


async def list_actions(
    session: AsyncSession, *, after: str | None = None, limit: int = 100
) -> ActionPage:
    """The audit trail, newest first."""
    page, next_cursor = await cursor.read_page(
        session,
        select(AdminAction),
        AdminAction.id,
        kind=ACTIONS_CURSOR,
        after=after,
        limit=limit,
        newest_first=True,
    )
    return ActionPage(items=[ActionOut.model_validate(a) for (a,) in page], next_cursor=next_cursor)


# --- the mirror's change feed ---------------------------------------------------------------


async def changed_resources(
    sessions: SessionFactory,
    *,
    since: str | None,
    limit: int = 100,
    company_id: int | None = None,
    resource_name: str | None = None,
) -> ResourcePage:
    """Mirror rows changed after `since`, in change order, deleted ones included (with
    `deleted_at`). A row changed again later shows up again, with its newest state."""
    position = cursor.decode(RESOURCES_CURSOR, since) if since else 0
    upto = await feed.horizon(sessions, Feed.RESOURCES)
    size = min(limit, MAX_PAGE)
    async with sessions() as session:
        rows = await changes.read(
            session,
            position,
            upto,
            size + 1,
            company_ids=None if company_id is None else [company_id],
            resource_names=None if resource_name is None else [resource_name],
        )
    page = rows[:size]
    more = len(rows) > size
    # Nothing more up to the horizon: the consumer may skip straight to it.
    reached = page[-1].change_seq if more else max(position, upto)
    return ResourcePage(
        items=[ResourceOut.model_validate(r) for r in page],
        next_cursor=cursor.encode(RESOURCES_CURSOR, reached),
        has_more=more,
    )


# --- the gates' transitions -----------------------------------------------------------------


async def gate_transitions(
    sessions: SessionFactory, *, since: str | None, limit: int = 100, company_id: int | None = None
) -> GateTransitionPage:
    """The gates' transitions after `since`, in the order they were committed (the feed
    downstream delivery reads too)."""
    position = cursor.decode(TRANSITIONS_CURSOR, since) if since else 0
    upto = await feed.horizon(sessions, Feed.GATES)
    size = min(limit, MAX_PAGE)
    async with sessions() as session:
        found = await gate_feed.read_transitions(
            session,
            position,
            upto,
            size + 1,
            company_ids=None if company_id is None else [company_id],
        )
    page = found[:size]
    more = len(found) > size
    reached = page[-1].position if more else max(position, upto)
    return GateTransitionPage(
        items=[
            GateTransitionOut(
                id=m.position,
                kind=m.type.removeprefix("gate."),
                at=m.occurred_at,
                **{k: v for k, v in m.data.items() if k != "transition_id"},
            )
            for m in page
        ],
        next_cursor=cursor.encode(TRANSITIONS_CURSOR, reached),
        has_more=more,
    )


# --- subscriptions and resync ---------------------------------------------------------------


async def sync_hooks(deps: AdminDeps, company_id: int, *, actor: str) -> SyncOut:
    """Sync the company's hook now (calls Procore outside any transaction), audited."""
    report = await subscriptions.sync_company(deps, company_id, on_demand=True)
    result = SyncOut.of(report)
    async with deps.sessions() as session, session.begin():
        await audit.record(
            session,
            actor=actor,
            action="hooks_sync",
            target=f"company:{company_id}",
            detail=result.model_dump(mode="json"),
        )
    return result


async def request_resync(
    session: AsyncSession,
    company_id: int,
    *,
    project_id: int | None,
    resource_name: str | None,
    actor: str,
) -> ResyncRunOut:
    """Ask for a resync (workers run it); joins an unfinished run of the same scope."""
    run_id = await runs.request(
        session, company_id, reason="operator", project_id=project_id, resource_name=resource_name
    )
    await audit.record(
        session,
        actor=actor,
        action="resync",
        target=f"company:{company_id}",
        detail={"run_id": run_id, "project_id": project_id, "resource_name": resource_name},
    )
    view = await runs.get(session, run_id)
    assert view is not None, "a run just requested is there"
    return ResyncRunOut.of(view)


# --- credentials ----------------------------------------------------------------------------

_CREDENTIALS = text(
    """
    SELECT c.id, c.kind, c.label, c.procore_user_id, c.procore_login, c.needs_reauth,
        c.created_at, c.updated_at,
        (c.access_token_enc IS NOT NULL OR c.refresh_token_enc IS NOT NULL) AS holds_tokens,
        COALESCE(array_agg(cc.company_id ORDER BY cc.company_id)
                 FILTER (WHERE cc.company_id IS NOT NULL), '{}') AS companies
    FROM credentials c LEFT JOIN company_credentials cc ON cc.credential_id = c.id
    GROUP BY c.id ORDER BY c.id
    """
)

_LOCK_CREDENTIAL = text("SELECT kind FROM credentials WHERE id = :id FOR UPDATE")

_RELEASE_COMPANIES = text(
    """
    DELETE FROM company_credentials WHERE credential_id = :id
    RETURNING company_id
    """
)

_CREDENTIAL_GATE = text("SELECT id FROM gates WHERE scope_key = :key AND state <> 'open'")


class CredentialRefused(Exception):
    """The credential cannot be removed here (the message says why and what to do)."""


async def list_credentials(session: AsyncSession) -> list[CredentialOut]:
    rows = (await session.execute(_CREDENTIALS)).mappings()
    return [CredentialOut.model_validate(dict(row)) for row in rows]


async def remove_credential(
    deps: connect.CredentialDeps, credential_id: int, *, actor: str
) -> CredentialRemovedOut | None:
    """Remove a connected user's credential: its tokens are taken out of the database and
    revoked at Procore, the companies it served fall back to the app's service account, and
    its credential gate (if closed) opens so that what it held is retried with that one. The
    row stays as a record (a later connect by the same user re-authorizes it). Both steps are
    audited: `credential_remove`, then `credential_revoke` with Procore's answer. None if
    there is no such credential; CredentialRefused for the app's own service account."""
    async with deps.sessions() as session, session.begin():
        kind = (await session.execute(_LOCK_CREDENTIAL, {"id": credential_id})).scalar()
        if kind is None:
            return None
        if CredentialKind(kind) is CredentialKind.CLIENT_CREDENTIALS:
            raise CredentialRefused(
                f"credential {credential_id} is the app's service account: it follows "
                "PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET and is not removed here"
            )
        retired = await retire_tokens(session, deps.vault, credential_id)
        companies = sorted(
            int(c)
            for c in (await session.execute(_RELEASE_COMPANIES, {"id": credential_id})).scalars()
        )
        gate_id = (
            await session.execute(_CREDENTIAL_GATE, {"key": scopes.credential_key(credential_id)})
        ).scalar()
        if gate_id is not None:
            await gates.operator_unpark(
                session,
                gate_id,
                reason=f"credential {credential_id} was removed",
                threshold=deps.settings.update_pending_projects,
            )
        await audit.record(
            session,
            actor=actor,
            action="credential_remove",
            target=f"credential:{credential_id}",
            detail={"companies": companies, "tokens": len(retired.tokens)},
        )
    deps.procore.tokens.forget(credential_id)
    for company_id in companies:
        deps.procore.tokens.forget_company(company_id)
    [revoked] = await revocation.revoke(deps.http, deps.settings, deps.sessions, [retired])
    async with deps.sessions() as session, session.begin():
        await audit.record(
            session,
            actor=actor,
            action="credential_revoke",
            target=f"credential:{credential_id}",
            detail=revoked.detail(),
        )
    return CredentialRemovedOut(
        id=credential_id,
        companies=companies,
        revoke=revoked.outcome,
        statuses=list(revoked.statuses),
    )


# --- write jobs -----------------------------------------------------------------------------


async def submit_jobs(
    session: AsyncSession,
    submissions: Sequence[writes_policy.Submission],
    *,
    actor: str,
) -> list[JobAccepted]:
    """Queue write jobs (a bulk submission is all or nothing), audited: one row per
    submission, naming the jobs it made."""
    accepted = await writes.submit(session, submissions, actor=actor)
    fresh = [a.id for a in accepted if not a.duplicate]
    target = None
    if accepted:
        ids = [a.id for a in accepted]
        target = f"job:{ids[0]}" if len(ids) == 1 else f"jobs:{min(ids)}..{max(ids)}"
    await audit.record(
        session,
        actor=actor,
        action="jobs_submit",
        target=target,
        detail={
            "jobs": len(accepted),
            "new": len(fresh),
            "companies": sorted({s.company_id for s in submissions}),
            "resources": sorted({s.resource_name for s in submissions}),
        },
    )
    return [JobAccepted(id=a.id, status=a.status, duplicate=a.duplicate) for a in accepted]


async def list_jobs(
    session: AsyncSession, where: writes.JobFilter, *, after: str | None, limit: int = 100
) -> JobPage:
    """Write jobs newest first; `next_cursor` continues below the page's last id."""
    page, next_cursor = await cursor.read_page(
        session,
        writes.matching(where),
        WriteJob.id,
        kind=JOBS_CURSOR,
        after=after,
        limit=limit,
        newest_first=True,
    )
    return JobPage(items=[JobOut.model_validate(job) for (job,) in page], next_cursor=next_cursor)


async def get_job(session: AsyncSession, job_id: int) -> JobDetail | None:
    job = await writes.get(session, job_id)
    return None if job is None else JobDetail.model_validate(job)


class JobAction(StrEnum):
    CANCEL = "cancel"
    REPLAY = "replay"
    RESOLVE = "resolve"


async def act_on_job(
    session: AsyncSession,
    job_id: int,
    action: JobAction,
    *,
    actor: str,
    force: bool = False,
    resource_id: int | None = None,
) -> JobDetail | None:
    """Cancel, replay or resolve a job in the caller's transaction, audited; None: no such
    job; writes.ActionRefused: not in a state the action applies to."""
    if action is JobAction.CANCEL:
        job = await writes.cancel(session, job_id)
        detail: dict[str, Any] = {}
    elif action is JobAction.REPLAY:
        job = await writes.replay(session, job_id, force=force)
        detail = {"force": force}
    else:
        job = await writes.resolve(session, job_id, resource_id=resource_id)
        detail = {"resource_id": resource_id}
    if job is None:
        return None
    await audit.record(
        session, actor=actor, action=f"job_{action}", target=f"job:{job_id}", detail=detail
    )
    return JobDetail.model_validate(job)


async def job_events(
    sessions: SessionFactory, *, after: str | None, limit: int, company_id: int | None = None
) -> JobEventPage:
    """The jobs' outcomes after a cursor, in order (the feed downstream consumers read)."""
    position = cursor.decode(JOB_EVENTS_CURSOR, after) if after else 0
    found, reached, more = await write_outcomes.read(
        sessions, after=position, limit=min(limit, MAX_PAGE), company_id=company_id
    )
    return JobEventPage(
        items=[
            JobEventOut(
                id=e.id,
                at=e.at,
                job_id=e.job_id,
                company_id=e.company_id,
                kind=e.kind,
                detail=e.detail,
            )
            for e in found
        ],
        next_cursor=cursor.encode(JOB_EVENTS_CURSOR, reached),
        has_more=more,
    )


async def issue_connect_link(
    session: AsyncSession, settings: Settings, company_id: int | None, *, actor: str
) -> str:
    """A single-use Connect-to-Procore link, audited (raises `connect.TooManyLinks`)."""
    async with session.begin():
        url = await connect.issue_connect_link(session, settings, company_id, issued_by=actor)
        await audit.record(
            session,
            actor=actor,
            action="connect_link",
            target=None if company_id is None else f"company:{company_id}",
        )
    return url


async def issue_setup_link(
    session: AsyncSession, settings: Settings, company_id: int, *, actor: str
) -> tuple[links.SetupLink, str]:
    """A signed link to the company's setup page and its embed key, audited (raises
    `links.LinksUnavailable` when no signing key is configured)."""
    link = links.setup_link(settings, company_id)
    key = links.embed_key(settings, company_id)
    async with session.begin():
        await audit.record(
            session,
            actor=actor,
            action="setup_link",
            target=f"company:{company_id}",
            detail={"expires_at": link.expires_at.isoformat()},
        )
    return link, key
