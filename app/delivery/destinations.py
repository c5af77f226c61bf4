"""The operator's actions on destinations, shared by the admin API and the CLI (one
implementation, two edges). Functions take a session and flush; the edge commits. Every change
is audited in the same transaction; a secret is shown once, at creation or rotation, and never
audited or logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit, cursor
from app.crypto import Vault
from app.db import SessionFactory
from app.delivery import addresses, signing
from app.delivery.addresses import AddressRules, DestinationRefused, Resolver
from app.delivery.schemas import (
    AttemptOut,
    AttemptPage,
    DeadLetterOut,
    DeadLetterPage,
    DestinationCreated,
    DestinationIn,
    DestinationOut,
    DestinationPatch,
    RotateOut,
)
from app.feed import messages, sources
from app.feed.messages import Source
from app.models import DeadLetter, DeliveryAttempt, Destination, DestinationState
from app.registry import resources

MAX_PAGE = cursor.MAX_PAGE

# The listings' cursor kinds (app.cursor), named once for the router's schema too.
ATTEMPTS_CURSOR = "attempts"
DEAD_LETTERS_CURSOR = "dead-letters"


class Invalid(ValueError):
    """A field that cannot be accepted; `str()` is `<field>: <reason>` (a 422)."""


class LetterSettled(Exception):
    """The dead letter was already replayed successfully."""


async def heads(sessions: SessionFactory) -> dict[Source, int]:
    """Where each feed stands now: a new destination starts there (it receives what changes
    from its creation on)."""
    return {source: await sources.head(sessions, source) for source in Source}


async def _check_fields(
    values: dict[str, Any], rules: AddressRules, resolver: Resolver
) -> dict[str, Any]:
    """The given fields, validated and normalised, or Invalid naming the first bad one."""
    checked = dict(values)
    if "url" in values:
        url = values["url"]
        if url is None:
            raise Invalid("url: a destination needs a URL")
        try:
            await addresses.check(url.strip(), rules, resolver)
        except DestinationRefused as exc:
            raise Invalid(f"url: {exc}") from exc
        checked["url"] = url.strip()
    for name in ("event_types", "company_ids", "resource_names"):
        if values.get(name) == []:
            raise Invalid(f"{name}: an empty list matches nothing; omit it (or null) for all")
    types = values.get("event_types")
    if types is not None:
        unknown = messages.unknown_types(types)
        if unknown:
            raise Invalid(
                f"event_types: unknown {', '.join(unknown)} (known: "
                f"{', '.join(messages.EVENT_TYPES)}, or a family such as gate.*)"
            )
        checked["event_types"] = list(dict.fromkeys(types))
    names = values.get("resource_names")
    if names is not None:
        unknown = resources.unknown(names)
        if unknown:
            raise Invalid(f"resource_names: unknown {', '.join(unknown)}")
        checked["resource_names"] = list(dict.fromkeys(names))
    if values.get("company_ids") is not None:
        checked["company_ids"] = sorted(set(values["company_ids"]))
    return checked


def _described(values: dict[str, Any]) -> dict[str, Any]:
    """What the audit records of the fields: never a secret, and a URL without its query
    (which may carry a token of the receiver's)."""
    found = dict(values)
    if found.get("url"):
        found["url"] = str(found["url"]).split("?", 1)[0]
    return found


async def create(
    session: AsyncSession,
    wanted: DestinationIn,
    *,
    vault: Vault,
    rules: AddressRules,
    starts_at: dict[Source, int],
    actor: str,
    resolver: Resolver = addresses.system_resolver,
) -> DestinationCreated:
    fields = await _check_fields(wanted.model_dump(), rules, resolver)
    secret = signing.new_secret()
    destination = Destination(
        **fields, secret_enc=vault.encrypt(secret), state=DestinationState.OPEN
    )
    session.add(destination)
    await session.flush()
    await session.execute(
        text(
            "INSERT INTO destination_cursors (destination_id, source, position)"
            " SELECT :id, * FROM unnest(CAST(:s AS text[]), CAST(:p AS bigint[]))"
        ),
        {
            "id": destination.id,
            "s": [s.value for s in starts_at],
            "p": list(starts_at.values()),
        },
    )
    await audit.record(
        session,
        actor=actor,
        action="destination_create",
        target=f"destination:{destination.id}",
        detail=_described(fields),
    )
    out = await get(session, destination.id)
    assert out is not None
    return DestinationCreated(**out.model_dump(), secret=secret)


_HEADS = text(
    """
    SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
            FROM resource_change_seq) AS resources,
           (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
            FROM outbox_id_seq) AS outbox
    """
)
_POSITIONS = text(
    "SELECT destination_id, source, position FROM destination_cursors"
    " WHERE destination_id = ANY(CAST(:ids AS bigint[]))"
)
_PENDING_LETTERS = text(
    "SELECT destination_id, count(*) FROM dead_letters"
    " WHERE destination_id = ANY(CAST(:ids AS bigint[])) AND replayed_at IS NULL"
    " GROUP BY destination_id"
)


async def _views(session: AsyncSession, rows: Sequence[Destination]) -> list[DestinationOut]:
    if not rows:
        return []
    ids = [d.id for d in rows]
    head = (await session.execute(_HEADS)).one()
    latest = {Source.RESOURCES.value: int(head.resources), Source.OUTBOX.value: int(head.outbox)}
    positions: dict[int, dict[str, int]] = {}
    for destination_id, source, position in await session.execute(_POSITIONS, {"ids": ids}):
        positions.setdefault(destination_id, {})[source] = int(position)
    letters: dict[int, int] = {
        int(d): int(n) for d, n in await session.execute(_PENDING_LETTERS, {"ids": ids})
    }
    now = datetime.now(UTC)
    found = []
    for d in rows:
        at = positions.get(d.id, {})
        overlap = d.previous_secret_expires_at
        fields = {
            name: getattr(d, name)
            for name in DestinationOut.model_fields
            if name not in ("dead_letters_pending", "behind", "secret_rotated_until")
        }
        found.append(
            DestinationOut(
                **fields,
                dead_letters_pending=int(letters.get(d.id, 0)),
                behind={s: max(0, n - at.get(s, 0)) for s, n in latest.items()},
                secret_rotated_until=overlap if overlap is not None and overlap > now else None,
            )
        )
    return found


async def list_all(session: AsyncSession) -> list[DestinationOut]:
    rows = (await session.scalars(select(Destination).order_by(Destination.id))).all()
    return await _views(session, rows)


async def get(session: AsyncSession, destination_id: int) -> DestinationOut | None:
    row = await session.get(Destination, destination_id, populate_existing=True)
    if row is None:
        return None
    [view] = await _views(session, [row])
    return view


async def update(
    session: AsyncSession,
    destination_id: int,
    patch: DestinationPatch,
    *,
    rules: AddressRules,
    actor: str,
    resolver: Resolver = addresses.system_resolver,
) -> DestinationOut | None:
    row = await session.get(Destination, destination_id, with_for_update=True)
    if row is None:
        return None
    given = patch.model_dump(exclude_unset=True)
    for flag in ("include_object", "enabled"):
        if flag in given and given[flag] is None:
            raise Invalid(f"{flag}: true or false")
    fields = await _check_fields(given, rules, resolver)
    for name, value in fields.items():
        setattr(row, name, value)
    if fields.get("url") is not None or fields.get("enabled"):
        # A new address or an operator turning it back on: try at once rather than after
        # the backoff the old address earned.
        row.next_attempt_at = None
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="destination_update",
        target=f"destination:{destination_id}",
        detail=_described(fields),
    )
    return await get(session, destination_id)


async def delete(session: AsyncSession, destination_id: int, *, actor: str) -> bool:
    row = await session.get(Destination, destination_id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="destination_delete",
        target=f"destination:{destination_id}",
        detail={"url": _described({"url": row.url})["url"], "delivered": row.delivered},
    )
    return True


async def rotate_secret(
    session: AsyncSession,
    destination_id: int,
    *,
    vault: Vault,
    overlap_seconds: float,
    actor: str,
) -> RotateOut | None:
    """A new secret signs from now on; the current one keeps signing beside it for the
    overlap, so a receiver can switch whenever it likes within it."""
    row = await session.get(Destination, destination_id, with_for_update=True)
    if row is None:
        return None
    secret = signing.new_secret()
    until = datetime.now(UTC) + timedelta(seconds=overlap_seconds) if overlap_seconds else None
    row.previous_secret_enc = row.secret_enc if until is not None else None
    row.previous_secret_expires_at = until
    row.secret_enc = vault.encrypt(secret)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="destination_rotate_secret",
        target=f"destination:{destination_id}",
        detail={"overlap_seconds": overlap_seconds},
    )
    return RotateOut(id=destination_id, secret=secret, previous_valid_until=until)


# --- attempts and dead letters ----------------------------------------------------------------


async def attempts(
    session: AsyncSession, destination_id: int, *, after: str | None, limit: int
) -> AttemptPage:
    """The destination's attempts, newest first."""
    page, next_cursor = await cursor.read_page(
        session,
        select(DeliveryAttempt).where(DeliveryAttempt.destination_id == destination_id),
        DeliveryAttempt.id,
        kind=ATTEMPTS_CURSOR,
        after=after,
        limit=limit,
        newest_first=True,
    )
    return AttemptPage(
        items=[AttemptOut.model_validate(a) for (a,) in page], next_cursor=next_cursor
    )


async def dead_letters(
    session: AsyncSession,
    destination_id: int,
    *,
    pending_only: bool,
    after: str | None,
    limit: int,
) -> DeadLetterPage:
    """The destination's dead letters, oldest first (the order a bulk replay sends them)."""
    query = select(DeadLetter).where(DeadLetter.destination_id == destination_id)
    if pending_only:
        query = query.where(DeadLetter.replayed_at.is_(None))
    page, next_cursor = await cursor.read_page(
        session, query, DeadLetter.id, kind=DEAD_LETTERS_CURSOR, after=after, limit=limit
    )
    return DeadLetterPage(
        items=[DeadLetterOut.model_validate(x) for (x,) in page], next_cursor=next_cursor
    )


async def replay_letter(
    session: AsyncSession, destination_id: int, letter_id: int, *, actor: str
) -> DeadLetterOut | None:
    """Send one dead letter again (the next delivery round, before new messages). None: no
    such letter; LetterSettled: it was replayed successfully already."""
    letter = await session.get(DeadLetter, letter_id, with_for_update=True)
    if letter is None or letter.destination_id != destination_id:
        return None
    if letter.replayed_at is not None:
        raise LetterSettled(f"dead letter {letter_id} was delivered at {letter.replayed_at}")
    letter.replay_requested_at = func.now()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="dead_letter_replay",
        target=f"dead_letter:{letter_id}",
        detail={"destination_id": destination_id, "message_id": letter.message_id},
    )
    await session.refresh(letter)
    return DeadLetterOut.model_validate(letter)


_REPLAY_ALL = text(
    """
    UPDATE dead_letters SET replay_requested_at = now()
    WHERE id IN (
        SELECT id FROM dead_letters
        WHERE destination_id = :d AND replayed_at IS NULL AND replay_requested_at IS NULL
          AND (CAST(:type AS text) IS NULL OR type = CAST(:type AS text))
        ORDER BY id LIMIT :limit)
    RETURNING id
    """
)


async def replay_letters(
    session: AsyncSession,
    destination_id: int,
    *,
    event_type: str | None,
    max_letters: int | None,
    actor: str,
) -> int | None:
    """Queue every unsettled dead letter (of a type) for delivery, oldest first. None: no
    such destination."""
    if await session.get(Destination, destination_id) is None:
        return None
    ids = (
        await session.execute(
            _REPLAY_ALL,
            {"d": destination_id, "type": event_type, "limit": max_letters or 2**62},
        )
    ).scalars()
    count = len(list(ids))
    await audit.record(
        session,
        actor=actor,
        action="dead_letters_replay",
        target=f"destination:{destination_id}",
        detail={"type": event_type, "count": count},
    )
    return count
