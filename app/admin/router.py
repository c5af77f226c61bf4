"""The admin API (`/admin`): bearer ADMIN_TOKEN; actions are audited in `admin_actions`.

Thin edge: parse, authorise, open the request's session, call `app.admin.service`, commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import bearer, cursor
from app.admin import service
from app.admin.schemas import (
    ActionPage,
    ConnectLinkIn,
    ConnectLinkOut,
    CredentialOut,
    CredentialRemovedOut,
    EventDetail,
    EventPage,
    GateDetail,
    GateOut,
    GatePage,
    GateTransitionPage,
    ProbeOut,
    Problem,
    ReasonIn,
    ReplayFilterIn,
    ReplayIn,
    ReplayOneOut,
    ReplayOut,
    ResourcePage,
    SetupLinkIn,
    SetupLinkOut,
    SummaryOut,
)
from app.connect.service import TooManyLinks
from app.db import TRANSACTION_TRIES, retryable
from app.fields import ID_MAX, RESOURCE_ENUM, Moment, known_resource
from app.logs import get_logger
from app.models import EventStatus, GateScope, GateState
from app.runtime import Runtime, runtime_of
from app.schedule import runs
from app.settings import Settings
from app.setup import links
from app.subscriptions import views
from app.subscriptions.views import HooksOut, ResyncIn, ResyncRunOut, SyncOut

log = get_logger(__name__)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="One of the ADMIN_TOKEN values (a list, so a token can be rotated)",
)


def _runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def admin_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller as the audit names it (`admin:<sha256 of its token, 8 hex>`), or 401."""
    token = None if credentials is None else credentials.credentials
    matched = bearer.matching(token, _runtime(request).settings.admin_token)
    if matched is None:
        log.warning("admin.unauthorized", path=request.url.path, presented=token is not None)
        raise HTTPException(
            401, "missing or invalid admin bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return f"admin:{bearer.fingerprint(matched)}"


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with _runtime(request).sessions() as session:
        yield session


Actor = Annotated[str, Depends(admin_actor)]
Session = Annotated[AsyncSession, Depends(_session)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
# Ids are Postgres bigints: anything outside is refused as invalid input, not sent to the database.
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]
QueryId = Annotated[int | None, Query(ge=1, le=ID_MAX)]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE, description="Page size (≤ 500)")]
QueryMoment = Annotated[Moment | None, Query()]
ResourceFilter = Annotated[
    str | None, Query(json_schema_extra=RESOURCE_ENUM), AfterValidator(known_resource)
]


def cursor_param(
    kind: str, name: str = "cursor", what: str = "`next_cursor` of the previous page"
) -> Any:
    """Every listing's cursor parameter: the schema publishes the exact pattern the listing
    accepts (app.cursor), so what the schema allows and what the service takes agree."""
    return Query(alias=name, pattern=cursor.pattern(kind), description=what)


GatesCursor = Annotated[str | None, cursor_param(service.GATES_CURSOR)]
EventsCursor = Annotated[str | None, cursor_param(service.EVENTS_CURSOR)]
ActionsCursor = Annotated[str | None, cursor_param(service.ACTIONS_CURSOR)]
ResourcesSince = Annotated[
    str | None,
    cursor_param(
        service.RESOURCES_CURSOR, "since", "`next_cursor` of the last call; omit to start over"
    ),
]

TransitionsSince = Annotated[
    str | None,
    cursor_param(
        service.TRANSITIONS_CURSOR, "since", "`next_cursor` of the last call; omit to start over"
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or wrong bearer token"},
}

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(admin_actor)],
    responses=_ERRORS,
)


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def _bad_cursor(exc: cursor.InvalidCursor, name: str = "cursor") -> HTTPException:
    return HTTPException(400, f"{name}: {exc}")


# --- gates ----------------------------------------------------------------------------------


@router.get("/gates", summary="Gates: state, diagnosis, remediation, parked events, next probe")
async def list_gates(
    session: Session,
    state: Annotated[list[GateState] | None, Query(description="Repeatable")] = None,
    scope: GateScope | None = None,
    company_id: QueryId = None,
    cursor_: GatesCursor = None,
    limit: Limit = 100,
) -> GatePage:
    try:
        return await service.list_gates(
            session,
            state=state or (),
            scope=scope,
            company_id=company_id,
            after=cursor_,
            limit=limit,
        )
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc) from exc


@router.get(
    "/gates/{gate_id}",
    summary="One gate, with Procore's recent answers for its scope",
    responses={404: {"model": Problem}},
)
async def get_gate(
    session: Session,
    gate_id: PathId,
    calls: Annotated[int, Query(ge=0, le=service.MAX_PAGE, description="Recent calls")] = 20,
) -> GateDetail:
    gate = await service.get_gate(session, gate_id, calls=calls)
    if gate is None:
        raise _not_found(f"gate {gate_id}")
    return gate


@router.post(
    "/companies/{company_id}/confirm-install",
    summary="Probe the company now; on success its gates open and parked events are released",
)
async def confirm_install(runtime: RuntimeDep, actor: Actor, company_id: PathId) -> ProbeOut:
    return await service.confirm_install(runtime, company_id, actor=actor)


@router.post(
    "/gates/{gate_id}/park",
    summary="Park a gate by hand (no probe reopens it; unpark does)",
    responses={404: {"model": Problem}},
)
async def park_gate(
    runtime: RuntimeDep, session: Session, actor: Actor, gate_id: PathId, body: ReasonIn
) -> GateOut:
    return await _operate(
        runtime.settings, session, actor, gate_id, service.GateAction.PARK, body.reason
    )


@router.post(
    "/gates/{gate_id}/unpark",
    summary="Open a gate by hand; its parked events are released in order",
    responses={404: {"model": Problem}},
)
async def unpark_gate(
    runtime: RuntimeDep, session: Session, actor: Actor, gate_id: PathId, body: ReasonIn
) -> GateOut:
    return await _operate(
        runtime.settings, session, actor, gate_id, service.GateAction.UNPARK, body.reason
    )


async def _operate(
    settings: Settings,
    session: AsyncSession,
    actor: str,
    gate_id: int,
    action: service.GateAction,
    reason: str,
) -> GateOut:
    # Opening a gate asks for a hooks sync in the same transaction; a worker syncing that
    # company at the same moment can deadlock with it: Postgres cancels one, run it again.
    for attempt in range(1, TRANSACTION_TRIES + 1):
        try:
            async with session.begin():
                gate = await service.operate_gate(
                    session, settings, gate_id, action, reason=reason, actor=actor
                )
                if gate is None:
                    raise _not_found(f"gate {gate_id}")
            return gate
        except DBAPIError as exc:
            sqlstate = retryable(exc)
            if sqlstate is None or attempt == TRANSACTION_TRIES:
                raise
            log.warning("admin.gate_retry", gate_id=gate_id, sqlstate=sqlstate, attempt=attempt)
    raise AssertionError("unreachable")


# --- events ---------------------------------------------------------------------------------


@router.get("/events", summary="Events by status, company, resource, time received")
async def list_events(
    session: Session,
    status: Annotated[list[EventStatus] | None, Query(description="Repeatable")] = None,
    company_id: QueryId = None,
    project_id: QueryId = None,
    resource_name: ResourceFilter = None,
    gate_id: QueryId = None,
    received_since: Annotated[Moment | None, Query(description="Inclusive")] = None,
    received_until: Annotated[Moment | None, Query(description="Exclusive")] = None,
    order: Annotated[service.Order, Query(description="By id: newest first (desc)")] = "desc",
    cursor_: EventsCursor = None,
    limit: Limit = 100,
) -> EventPage:
    where = service.EventFilter(
        status=status or (),
        company_id=company_id,
        project_id=project_id,
        resource_name=resource_name,
        gate_id=gate_id,
        received_since=received_since,
        received_until=received_until,
    )
    try:
        return await service.list_events(session, where, after=cursor_, limit=limit, order=order)
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc) from exc


@router.get(
    "/events/{event_id:int}",
    summary="One event with its raw payload",
    responses={404: {"model": Problem}},
)
async def get_event(session: Session, event_id: PathId) -> EventDetail:
    event = await service.get_event(session, event_id)
    if event is None:
        raise _not_found(f"event {event_id}")
    return event


@router.post(
    "/events/{event_id:int}/replay",
    summary="Send a dead or skipped event back to the queue (attempts reset)",
    responses={
        404: {"model": Problem},
        409: {"model": Problem, "description": "Not final, or needs force"},
    },
)
async def replay_event(
    session: Session, actor: Actor, event_id: PathId, body: ReplayIn | None = None
) -> ReplayOneOut:
    force = body.force if body is not None else False
    async with session.begin():
        try:
            event = await service.replay_event(session, event_id, force=force, actor=actor)
        except service.ReplayRefused as exc:
            raise HTTPException(409, exc.message) from exc
        if event is None:
            raise _not_found(f"event {event_id}")
    return ReplayOneOut(replayed=True, event=event)


@router.post(
    "/events/replay",
    summary="Replay every event matching a filter (default: status dead); returns how many",
    responses={409: {"model": Problem, "description": "A status that needs force"}},
)
async def replay_events(runtime: RuntimeDep, actor: Actor, body: ReplayFilterIn) -> ReplayOut:
    where = service.EventFilter(
        status=body.status,
        company_id=body.company_id,
        project_id=body.project_id,
        resource_name=body.resource_name,
        gate_id=body.gate_id,
        received_since=body.received_since,
        received_until=body.received_until,
    )
    try:
        service.check_replay_statuses(body.status, force=body.force)
    except service.ReplayRefused as exc:
        raise HTTPException(409, f"status: {exc.message}") from exc
    except ValueError as exc:
        raise HTTPException(422, f"status: {exc}") from exc
    replayed = await service.replay_matching(
        runtime.sessions, where, force=body.force, actor=actor, max_events=body.max_events
    )
    return ReplayOut(replayed=replayed)


# --- overview, mirror -----------------------------------------------------------------------


@router.get("/summary", summary="Events by status, gates by state, queue depth and age")
async def summary(runtime: RuntimeDep, session: Session) -> SummaryOut:
    return await service.summary(
        session, worker_stale_seconds=runtime.settings.worker_stale_seconds
    )


@router.get(
    "/resources",
    summary="Mirror rows changed since a cursor, in change order (deleted ones included)",
)
async def changed_resources(
    runtime: RuntimeDep,
    since: ResourcesSince = None,
    limit: Limit = 100,
    company_id: QueryId = None,
    resource_name: ResourceFilter = None,
) -> ResourcePage:
    try:
        return await service.changed_resources(
            runtime.sessions,
            since=since,
            limit=limit,
            company_id=company_id,
            resource_name=resource_name,
        )
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc, "since") from exc


@router.get(
    "/gate-transitions",
    summary="The gates' transitions (parked, needs_admin, released, moved, dormant, woken), "
    "oldest first, by cursor",
)
async def gate_transitions(
    runtime: RuntimeDep,
    since: TransitionsSince = None,
    limit: Limit = 100,
    company_id: QueryId = None,
) -> GateTransitionPage:
    try:
        return await service.gate_transitions(
            runtime.sessions, since=since, limit=limit, company_id=company_id
        )
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc, "since") from exc


@router.get("/actions", summary="The audit trail of admin and CLI actions, newest first")
async def list_actions(
    session: Session,
    cursor_: ActionsCursor = None,
    limit: Limit = 100,
) -> ActionPage:
    try:
        return await service.list_actions(session, after=cursor_, limit=limit)
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc) from exc


# --- links ----------------------------------------------------------------------------------


@router.post(
    "/connect-links",
    summary="Issue a single-use Connect-to-Procore link (authorization-code flow)",
    description=(
        "A link for a company attaches the connected login to that company only; a link "
        "without a company attaches it to every company the login reaches."
    ),
    responses={429: {"model": Problem, "description": "CONNECT_LINKS_PER_HOUR reached"}},
)
async def connect_link(
    runtime: RuntimeDep, session: Session, actor: Actor, body: ConnectLinkIn | None = None
) -> ConnectLinkOut:
    company_id = body.company_id if body is not None else None
    settings = runtime.settings
    try:
        url = await service.issue_connect_link(session, settings, company_id, actor=actor)
    except TooManyLinks as exc:
        raise HTTPException(429, str(exc)) from exc
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.connect_link_ttl_seconds)
    return ConnectLinkOut(url=url, company_id=company_id, expires_at=expires_at)


@router.get(
    "/credentials",
    summary="Credentials: the app's service account and connected users, the companies each "
    "serves (never a token)",
)
async def list_credentials(session: Session) -> list[CredentialOut]:
    return await service.list_credentials(session)


@router.delete(
    "/credentials/{credential_id}",
    summary="Remove a connected user's credential: its tokens are revoked at Procore, its "
    "companies fall back to the app's service account",
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def remove_credential(
    runtime: RuntimeDep, actor: Actor, credential_id: PathId
) -> CredentialRemovedOut:
    try:
        removed = await service.remove_credential(
            runtime,
            credential_id,
            actor=actor,
        )
    except service.CredentialRefused as exc:
        raise HTTPException(409, str(exc)) from exc
    if removed is None:
        raise _not_found(f"credential {credential_id}")
    return removed


@router.post(
    "/setup-links",
    summary="Issue a signed link to a company's setup page (its live state, next steps)",
    responses={409: {"model": Problem, "description": "No signing key is configured"}},
)
async def setup_link(
    runtime: RuntimeDep, session: Session, actor: Actor, body: SetupLinkIn
) -> SetupLinkOut:
    try:
        link, key = await service.issue_setup_link(
            session, runtime.settings, body.company_id, actor=actor
        )
    except links.LinksUnavailable as exc:
        raise HTTPException(409, str(exc)) from exc
    return SetupLinkOut(
        url=link.url, company_id=link.company_id, expires_at=link.expires_at, embed_key=key
    )


# --- subscriptions and resync ---------------------------------------------------------------


@router.get(
    "/companies/{company_id}/hooks",
    summary="The company's hook: id, status (disabled by Procore?), triggers, last sync",
    responses={404: {"model": Problem}},
)
async def company_hooks(session: Session, company_id: PathId) -> HooksOut:
    found = await views.hooks_of(session, company_id)
    if found is None:
        raise _not_found(f"hooks of company {company_id}")
    return found


@router.post(
    "/companies/{company_id}/hooks/sync",
    summary="Sync the company's hook now: create, fix, re-enable; other namespaces untouched",
)
async def sync_company_hooks(runtime: RuntimeDep, actor: Actor, company_id: PathId) -> SyncOut:
    return await service.sync_hooks(runtime, company_id, actor=actor)


@router.post(
    "/companies/{company_id}/resync",
    status_code=202,
    summary="Backfill the mirror from Procore's lists (workers run it; progress below)",
)
async def resync_company(
    session: Session, actor: Actor, company_id: PathId, body: ResyncIn | None = None
) -> ResyncRunOut:
    wanted = body or ResyncIn()
    async with session.begin():
        return await service.request_resync(
            session,
            company_id,
            project_id=wanted.project_id,
            resource_name=wanted.resource_name,
            actor=actor,
        )


@router.get("/companies/{company_id}/resync-runs", summary="The company's resyncs, newest first")
async def company_resync_runs(
    session: Session, company_id: PathId, limit: Limit = 20
) -> list[ResyncRunOut]:
    return [ResyncRunOut.of(v) for v in await runs.of_company(session, company_id, limit=limit)]


@router.get(
    "/resync-runs/{run_id}",
    summary="One resync: status and progress (parts, pages, listed, written, absent)",
    responses={404: {"model": Problem}},
)
async def resync_run(session: Session, run_id: PathId) -> ResyncRunOut:
    view = await runs.get(session, run_id)
    if view is None:
        raise _not_found(f"resync run {run_id}")
    return ResyncRunOut.of(view)
