"""The CLI's destination commands (`procore-hooks destinations ...`): the same functions as the
admin API (`app.delivery.destinations`), straight over Postgres, audited as `cli:<user>@<host>`.
"""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from app import audit
from app.crypto import Vault
from app.db import sessions_for
from app.delivery import destinations
from app.delivery.addresses import AddressRules
from app.delivery.schemas import DestinationIn, DestinationOut, DestinationPatch
from app.settings import Settings


def _print_json(console: Console, value: Any) -> None:
    console.print_json(orjson.dumps(value, default=str).decode())


def _table(found: list[DestinationOut]) -> Table:
    table = Table("id", "state", "enabled", "url", "delivered", "dead", "behind", "last answer")
    for d in found:
        behind = sum(d.behind.values())
        last = d.last_error or (str(d.last_status) if d.last_status else "")
        table.add_row(
            str(d.id), d.state.value, "yes" if d.enabled else "no", d.url, str(d.delivered),
            str(d.dead), str(behind), last[:40],
        )  # fmt: skip
    return table


async def list_destinations(settings: Settings, *, console: Console, as_json: bool) -> int:
    async with sessions_for(settings) as sessions, sessions() as session:
        found = await destinations.list_all(session)
    if as_json:
        _print_json(console, [d.model_dump(mode="json") for d in found])
    else:
        console.print(_table(found))
    return 0


async def show(settings: Settings, destination_id: int, *, console: Console) -> int:
    async with sessions_for(settings) as sessions, sessions() as session:
        found = await destinations.get(session, destination_id)
    if found is None:
        console.print(f"no destination {destination_id}")
        return 1
    _print_json(console, found.model_dump(mode="json"))
    return 0


async def add(settings: Settings, wanted: DestinationIn, *, console: Console) -> int:
    vault = Vault(settings.encryption_key)
    if not vault.ready:
        console.print("ENCRYPTION_KEY is not set: destination secrets cannot be kept")
        return 2
    async with sessions_for(settings) as sessions:
        starts_at = await destinations.heads(sessions)
        try:
            async with sessions() as session, session.begin():
                created = await destinations.create(
                    session,
                    wanted,
                    vault=vault,
                    rules=AddressRules.of(settings),
                    starts_at=starts_at,
                    actor=audit.cli_actor(),
                )
        except destinations.Invalid as exc:
            console.print(f"refused: {exc}")
            return 2
    console.print(f"destination {created.id} added; its signing secret (shown this once):")
    console.print(created.secret, markup=False, highlight=False)
    return 0


async def update(
    settings: Settings, destination_id: int, patch: DestinationPatch, *, console: Console
) -> int:
    async with sessions_for(settings) as sessions:
        try:
            async with sessions() as session, session.begin():
                found = await destinations.update(
                    session,
                    destination_id,
                    patch,
                    rules=AddressRules.of(settings),
                    actor=audit.cli_actor(),
                )
        except destinations.Invalid as exc:
            console.print(f"refused: {exc}")
            return 2
    if found is None:
        console.print(f"no destination {destination_id}")
        return 1
    console.print(_table([found]))
    return 0


async def remove(settings: Settings, destination_id: int, *, console: Console) -> int:
    async with sessions_for(settings) as sessions, sessions() as session, session.begin():
        removed = await destinations.delete(session, destination_id, actor=audit.cli_actor())
    console.print(f"destination {destination_id} removed" if removed else "no such destination")
    return 0 if removed else 1


async def rotate(
    settings: Settings, destination_id: int, overlap_seconds: float, *, console: Console
) -> int:
    vault = Vault(settings.encryption_key)
    async with sessions_for(settings) as sessions, sessions() as session, session.begin():
        rotated = await destinations.rotate_secret(
            session,
            destination_id,
            vault=vault,
            overlap_seconds=overlap_seconds,
            actor=audit.cli_actor(),
        )
    if rotated is None:
        console.print(f"no destination {destination_id}")
        return 1
    until = rotated.previous_valid_until
    console.print(
        "new signing secret (shown this once); the previous one signs too "
        + (f"until {until.isoformat()}:" if until else "no longer:")
    )
    console.print(rotated.secret, markup=False, highlight=False)
    return 0


async def dead_letters(settings: Settings, destination_id: int, *, console: Console) -> int:
    async with sessions_for(settings) as sessions, sessions() as session:
        if await destinations.get(session, destination_id) is None:
            console.print(f"no destination {destination_id}")
            return 1
        page = await destinations.dead_letters(
            session, destination_id, pending_only=True, after=None, limit=destinations.MAX_PAGE
        )
    table = Table("id", "message", "type", "status", "answer", "replays", "created")
    for x in page.items:
        table.add_row(
            str(x.id), x.message_id, x.type, str(x.status or ""), (x.answer or "")[:40],
            str(x.replays), x.created_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    console.print(table)
    return 0


async def replay(
    settings: Settings, destination_id: int, letter_id: int | None, *, console: Console
) -> int:
    actor = audit.cli_actor()
    async with sessions_for(settings) as sessions, sessions() as session, session.begin():
        if letter_id is None:
            count = await destinations.replay_letters(
                session, destination_id, event_type=None, max_letters=None, actor=actor
            )
        else:
            try:
                letter = await destinations.replay_letter(
                    session, destination_id, letter_id, actor=actor
                )
            except destinations.LetterSettled as exc:
                console.print(str(exc))
                return 1
            count = None if letter is None else 1
    if count is None:
        console.print("no such destination or dead letter")
        return 1
    console.print(f"{count} dead letters queued for delivery (workers send them next)")
    return 0
