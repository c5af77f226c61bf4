"""The feeds downstream consumers read, each in position order, and the lock that makes a
position safe to read past.

A feed is a table whose rows take their position from a sequence at insert: the mirror's
`resources` (`change_seq`, bumped on every change), the `outbox` (ids of the other facts
downstream systems are told about) and the gates' transitions. A reader that saw position 11
must never later find a 10 that was still uncommitted when it looked. So writers hold the
feed's advisory lock in shared mode for their transaction (`writing`), and a reader takes it
exclusively for an instant to learn a horizon (`horizon`): every position at or below it
belongs to a finished transaction. Readers read only up to the horizon.

This package owns that lock and the reading of the feeds; the admin API (`GET
/admin/resources`), the live stream (`GET /admin/stream`) and delivery to destinations all
read through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory


@dataclass(frozen=True, slots=True)
class _Spec:
    lock: int
    sequence: str


class Feed(Enum):
    """Each feed: its advisory lock key and the sequence its positions come from."""

    RESOURCES = _Spec(0x70686D6972726F72, "resource_change_seq")  # "phmirror"
    OUTBOX = _Spec(0x70686F7574626F78, "outbox_id_seq")  # "phoutbox"
    GATES = _Spec(0x7068676174657321, "gate_transitions_id_seq")  # "phgates!"

    @property
    def lock(self) -> int:
        return self.value.lock


_SHARED = text("SELECT pg_advisory_xact_lock_shared(:k)")
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:k)")


async def writing(session: AsyncSession, feed: Feed) -> None:
    """Call in a transaction that writes positions of `feed`, before it writes them."""
    await session.execute(_SHARED, {"k": feed.lock})


def _last_value(sequence: str) -> str:
    # The sequence names are the constants above, never input.
    return (
        "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "  # noqa: S608
        f"FROM {sequence}"
    )


async def horizon(sessions: SessionFactory, feed: Feed) -> int:
    """The highest position of `feed` whose transaction has finished (committed or not):
    nothing at or below it can still appear. Waits for the writers in flight, an instant."""
    async with sessions() as session, session.begin():
        await session.execute(_EXCLUSIVE, {"k": feed.lock})
        return int((await session.execute(text(_last_value(feed.value.sequence)))).scalar_one())


async def latest(session: AsyncSession, feed: Feed) -> int:
    """The feed's last position handed out, without the lock: a cheap way to see that nothing
    new can be there (what is at or below it may still be committing; read via `horizon`)."""
    return int((await session.execute(text(_last_value(feed.value.sequence)))).scalar_one())
