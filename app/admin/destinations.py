"""The admin API of downstream delivery: destinations (`/admin/destinations`), their attempts
and dead letters, and the live change stream (`GET /admin/stream`).

Thin edge, like `app.admin.router`: parse, authorise (bearer ADMIN_TOKEN), open the request's
session, call `app.delivery.destinations`, commit. Every change is audited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

import orjson
from arq.connections import ArqRedis
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from app import cursor
from app.admin.router import (
    _ERRORS,
    Actor,
    Limit,
    PathId,
    QueryId,
    ResourceFilter,
    RuntimeDep,
    Session,
    _bad_cursor,
    _not_found,
    admin_actor,
    cursor_param,
)
from app.admin.schemas import Problem
from app.crypto import Vault
from app.db import SessionFactory
from app.delivery import destinations, service
from app.delivery.addresses import AddressRules
from app.delivery.schemas import (
    AttemptPage,
    DeadLetterOut,
    DeadLetterPage,
    DestinationCreated,
    DestinationIn,
    DestinationOut,
    DestinationPatch,
    ReplayLettersIn,
    ReplayLettersOut,
    RotateIn,
    RotateOut,
)
from app.feed import sources
from app.feed.messages import Source
from app.feed.sources import Interest
from app.logs import get_logger
from app.registry import resources
from app.settings import Settings

log = get_logger(__name__)


class DestinationsDeps(Protocol):
    """What the helpers of these routes use (the vault's readiness, a kick on the queue, the
    stream's reads); the routes hold the Runtime, which has all of these, and pass it."""

    sessions: SessionFactory
    settings: Settings
    vault: Vault
    queue: ArqRedis


router = APIRouter(
    prefix="/admin",
    tags=["destinations"],
    dependencies=[Depends(admin_actor)],
    responses=_ERRORS,
)

_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "A URL or filter that cannot be accepted (named)"}
}
_NO_KEY: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "ENCRYPTION_KEY is not set: no secret can be kept"}
}
_MISSING: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


def _vault_ready(deps: DestinationsDeps) -> None:
    if not deps.vault.ready:
        raise HTTPException(409, "ENCRYPTION_KEY is not set: destination secrets cannot be kept")


async def _kick(deps: DestinationsDeps, destination_id: int) -> None:
    """Deliver now rather than at the next tick (best effort: the tick covers it)."""
    try:
        await service.kick(deps.queue, destination_id)
    except (RedisError, OSError) as exc:
        log.warning("delivery.kick_failed", error=str(exc) or type(exc).__name__)


@router.post(
    "/destinations",
    status_code=201,
    summary="Add a destination; its signing secret (whsec_...) is in this answer only",
    responses={**_INVALID, **_NO_KEY},
)
async def create_destination(
    runtime: RuntimeDep, session: Session, actor: Actor, body: DestinationIn
) -> DestinationCreated:
    _vault_ready(runtime)
    starts_at = await destinations.heads(runtime.sessions)
    async with session.begin():
        try:
            return await destinations.create(
                session,
                body,
                vault=runtime.vault,
                rules=AddressRules.of(runtime.settings),
                starts_at=starts_at,
                actor=actor,
            )
        except destinations.Invalid as exc:
            raise HTTPException(422, str(exc)) from exc


@router.get("/destinations", summary="Destinations: state, counts, last answer, how far behind")
async def list_destinations(session: Session) -> list[DestinationOut]:
    return await destinations.list_all(session)


@router.get(
    "/destinations/{destination_id}",
    summary="One destination: state (open, suspect, parked), counts, last answer",
    responses=_MISSING,
)
async def get_destination(session: Session, destination_id: PathId) -> DestinationOut:
    found = await destinations.get(session, destination_id)
    if found is None:
        raise _not_found(f"destination {destination_id}")
    return found


@router.patch(
    "/destinations/{destination_id}",
    summary="Change a destination's URL, filters or enabled flag (null clears a filter)",
    responses={**_MISSING, **_INVALID},
)
async def update_destination(
    runtime: RuntimeDep,
    session: Session,
    actor: Actor,
    destination_id: PathId,
    body: DestinationPatch,
) -> DestinationOut:
    async with session.begin():
        try:
            found = await destinations.update(
                session,
                destination_id,
                body,
                rules=AddressRules.of(runtime.settings),
                actor=actor,
            )
        except destinations.Invalid as exc:
            raise HTTPException(422, str(exc)) from exc
        if found is None:
            raise _not_found(f"destination {destination_id}")
    await _kick(runtime, destination_id)
    return found


@router.delete(
    "/destinations/{destination_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a destination, with its attempts and dead letters",
    responses=_MISSING,
)
async def delete_destination(session: Session, actor: Actor, destination_id: PathId) -> Response:
    async with session.begin():
        if not await destinations.delete(session, destination_id, actor=actor):
            raise _not_found(f"destination {destination_id}")
    return Response(status_code=204)


@router.post(
    "/destinations/{destination_id}/rotate-secret",
    summary="A new signing secret; the previous one keeps signing beside it for the overlap",
    responses={**_MISSING, **_NO_KEY},
)
async def rotate_secret(
    runtime: RuntimeDep,
    session: Session,
    actor: Actor,
    destination_id: PathId,
    body: RotateIn | None = None,
) -> RotateOut:
    _vault_ready(runtime)
    overlap = body.overlap_seconds if body is not None else None
    async with session.begin():
        rotated = await destinations.rotate_secret(
            session,
            destination_id,
            vault=runtime.vault,
            overlap_seconds=runtime.settings.destination_secret_overlap_seconds
            if overlap is None
            else overlap,
            actor=actor,
        )
        if rotated is None:
            raise _not_found(f"destination {destination_id}")
    return rotated


async def _exists(session: Session, destination_id: int) -> None:
    if await destinations.get(session, destination_id) is None:
        raise _not_found(f"destination {destination_id}")


@router.get(
    "/destinations/{destination_id}/attempts",
    summary="Delivery attempts to the destination, newest first",
    responses=_MISSING,
)
async def list_attempts(
    session: Session,
    destination_id: PathId,
    cursor_: Annotated[str | None, cursor_param(destinations.ATTEMPTS_CURSOR)] = None,
    limit: Limit = 100,
) -> AttemptPage:
    await _exists(session, destination_id)
    try:
        return await destinations.attempts(session, destination_id, after=cursor_, limit=limit)
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc) from exc


@router.get(
    "/destinations/{destination_id}/dead-letters",
    summary="Messages the destination refused (4xx other than 408/429), oldest first",
    responses=_MISSING,
)
async def list_dead_letters(
    session: Session,
    destination_id: PathId,
    pending: Annotated[bool, Query(description="Only those not yet replayed")] = True,
    cursor_: Annotated[str | None, cursor_param(destinations.DEAD_LETTERS_CURSOR)] = None,
    limit: Limit = 100,
) -> DeadLetterPage:
    await _exists(session, destination_id)
    try:
        return await destinations.dead_letters(
            session, destination_id, pending_only=pending, after=cursor_, limit=limit
        )
    except cursor.InvalidCursor as exc:
        raise _bad_cursor(exc) from exc


@router.post(
    "/destinations/{destination_id}/dead-letters/{letter_id}/replay",
    summary="Send one dead letter again (before new messages, at the next round)",
    responses={**_MISSING, 409: {"model": Problem, "description": "Already delivered"}},
)
async def replay_dead_letter(
    runtime: RuntimeDep, session: Session, actor: Actor, destination_id: PathId, letter_id: PathId
) -> DeadLetterOut:
    async with session.begin():
        try:
            letter = await destinations.replay_letter(
                session, destination_id, letter_id, actor=actor
            )
        except destinations.LetterSettled as exc:
            raise HTTPException(409, str(exc)) from exc
        if letter is None:
            raise _not_found(f"dead letter {letter_id} of destination {destination_id}")
    await _kick(runtime, destination_id)
    return letter


@router.post(
    "/destinations/{destination_id}/dead-letters/replay",
    summary="Send every dead letter not yet delivered again, oldest first",
    responses=_MISSING,
)
async def replay_dead_letters(
    runtime: RuntimeDep,
    session: Session,
    actor: Actor,
    destination_id: PathId,
    body: ReplayLettersIn | None = None,
) -> ReplayLettersOut:
    wanted = body or ReplayLettersIn()
    async with session.begin():
        count = await destinations.replay_letters(
            session,
            destination_id,
            event_type=wanted.type,
            max_letters=wanted.max_letters,
            actor=actor,
        )
        if count is None:
            raise _not_found(f"destination {destination_id}")
    if count:
        await _kick(runtime, destination_id)
    return ReplayLettersOut(replayed=count)


# --- the live stream --------------------------------------------------------------------------

_STREAM_BATCH = 100
_KEEPALIVE_S = 15.0
_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-Sent Events: `id` is the change_seq, `event` the type, `data` "
        "the message body (as delivered to destinations); the stream ends after "
        "STREAM_MAX_SECONDS and the client reconnects with Last-Event-ID",
    },
    400: {"model": Problem, "description": "A Last-Event-ID or filter that cannot be used"},
    503: {"model": Problem, "description": "STREAM_MAX_CLIENTS streams are open already"},
}


class _Streams:
    """Streams open in this process (bounded by STREAM_MAX_CLIENTS)."""

    def __init__(self) -> None:
        self.open = 0


def _streams(request: Request) -> _Streams:
    state = request.app.state
    if not hasattr(state, "streams"):
        state.streams = _Streams()
    found: _Streams = state.streams
    return found


def _position(last_event_id: str) -> int | None:
    if not last_event_id:
        return None
    value = last_event_id.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise HTTPException(400, "Last-Event-ID: the id of an event of this stream (a change_seq)")
    return int(value)


@router.get(
    "/stream",
    summary="The change feed as Server-Sent Events, resuming after Last-Event-ID",
    response_class=StreamingResponse,
    responses=_SSE_DOC,
)
async def stream(
    request: Request,
    runtime: RuntimeDep,
    # A string, empty when absent (a header is text: never `null`).
    last_event_id: Annotated[
        str,
        Header(
            description="Resume after this event id (sent by EventSource)",
            pattern=r"^([0-9]{1,19})?$",
        ),
    ] = "",
    since: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="Start after this change_seq (0: everything); default: from now on",
        ),
    ] = None,
    company_id: QueryId = None,
    resource_name: ResourceFilter = None,
    include_object: bool = False,
) -> StreamingResponse:
    position = _position(last_event_id)
    if resource_name is not None and not resources.is_supported(resource_name):
        raise HTTPException(400, f"resource_name: unknown resource {resource_name!r}")
    streams = _streams(request)
    settings = runtime.settings
    if streams.open >= settings.stream_max_clients:
        raise HTTPException(503, "too many streams are open; retry later")
    if position is None:
        position = (
            since if since is not None else await sources.head(runtime.sessions, Source.RESOURCES)
        )
    interest = Interest(
        company_ids=None if company_id is None else (company_id,),
        resource_names=None if resource_name is None else (resource_name,),
    )
    streams.open += 1
    return StreamingResponse(
        _events(request, runtime, position, interest, include_object, streams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request,
    deps: DestinationsDeps,
    position: int,
    interest: Interest,
    include_object: bool,
    streams: _Streams,
) -> AsyncIterator[bytes]:
    """One batch at a time: the next is read only once this one was written (the server
    pauses a slow reader's writes), so a stream holds at most a batch in memory."""
    settings = deps.settings
    ends = time.monotonic() + settings.stream_max_seconds
    quiet_since = time.monotonic()
    try:
        yield b"retry: 2000\n\n"
        while time.monotonic() < ends and not await request.is_disconnected():
            batch = await sources.read(
                deps.sessions, Source.RESOURCES, position, _STREAM_BATCH, interest
            )
            for message in batch.messages:
                data = orjson.dumps(message.body(include_object=include_object)).decode()
                yield f"id: {message.position}\nevent: {message.type}\ndata: {data}\n\n".encode()
            if batch.messages:
                quiet_since = time.monotonic()
            position = batch.position
            if batch.more:
                continue
            if time.monotonic() - quiet_since > _KEEPALIVE_S:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(
                min(settings.stream_poll_seconds, max(0.0, ends - time.monotonic()))
            )
    finally:
        streams.open -= 1
