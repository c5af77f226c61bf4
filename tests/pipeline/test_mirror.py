"""The mirror: newest wins, soft deletes, and change_seq moves only on real changes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.events import mirror
from app.feed import Feed
from app.registry import resources
from app.runtime import Runtime

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def snap(updated: datetime | None, fetched: datetime, **data: Any) -> mirror.Snapshot:
    return mirror.Snapshot(31, "RFIs", 5150, 900, {"id": 5150, **data}, updated, fetched)


async def row(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(
                text(
                    "SELECT data, procore_updated_at, fetched_at, deleted_at, change_seq"
                    " FROM resources"
                )
            )
        ).one()


async def upsert(runtime: Runtime, *snapshots: mirror.Snapshot) -> Any:
    async with runtime.sessions() as session, session.begin():
        await mirror.upsert(session, snapshots)
    return await row(runtime)


async def delete(runtime: Runtime, at: datetime) -> Any:
    async with runtime.sessions() as session, session.begin():
        await mirror.soft_delete(session, [mirror.Deletion(31, "RFIs", 5150, 900, at)])
    return await row(runtime)


async def test_newest_wins_whatever_order_fetches_finish_in(db: Runtime) -> None:
    newer = await upsert(db, snap(T0 + timedelta(minutes=5), T0, subject="new"))
    older = await upsert(db, snap(T0, T0 + timedelta(minutes=9), subject="old"))
    assert older.data["subject"] == "new"
    assert older.change_seq == newer.change_seq
    assert older.procore_updated_at == T0 + timedelta(minutes=5)


async def test_change_seq_moves_only_on_a_real_change(db: Runtime) -> None:
    first = await upsert(db, snap(T0, T0, subject="a"))
    same = await upsert(db, snap(T0, T0 + timedelta(seconds=5), subject="a"))
    assert same.change_seq == first.change_seq
    assert same.fetched_at == T0 + timedelta(seconds=5)  # the fetch is still recorded
    changed = await upsert(db, snap(T0 + timedelta(seconds=1), T0, subject="b"))
    assert changed.change_seq > first.change_seq
    assert changed.data["subject"] == "b"


async def test_soft_delete_and_restore(db: Runtime) -> None:
    alive = await upsert(db, snap(T0, T0, subject="a"))
    deleted = await delete(db, T0 + timedelta(minutes=1))
    assert deleted.deleted_at == T0 + timedelta(minutes=1)
    assert deleted.change_seq > alive.change_seq
    assert deleted.data["subject"] == "a"
    again = await delete(db, T0 + timedelta(minutes=2))
    assert again.change_seq == deleted.change_seq  # already deleted: not a change
    # A fetch sent before the deletion does not revive it...
    stale = await upsert(db, snap(T0 + timedelta(seconds=30), T0 + timedelta(seconds=40)))
    assert stale.deleted_at is not None
    # ...one showing a newer state (restored from the recycle bin) does.
    restored = await upsert(db, snap(T0 + timedelta(minutes=3), T0 + timedelta(minutes=3)))
    assert restored.deleted_at is None
    assert restored.change_seq > deleted.change_seq


async def test_a_delete_for_an_unseen_resource_leaves_a_tombstone(db: Runtime) -> None:
    tomb = await delete(db, T0)
    assert tomb.data is None
    assert tomb.deleted_at == T0


def test_resource_body_follows_the_registry_envelope_and_updated_at_field() -> None:
    rfis = resources.REGISTRY["RFIs"]
    # v1 answers are the object itself, whatever fields it has.
    assert mirror.resource_body(rfis, {"id": 1, "data": {"x": 1}}, 1) == {"id": 1, "data": {"x": 1}}
    assert mirror.resource_body(rfis, [1], 1) is None
    # A v2.0 answer's object is in its `data` envelope.
    v2 = replace(rfis, envelope=resources.Envelope.DATA)
    assert mirror.resource_body(v2, {"data": {"id": "1"}}, 1) == {"id": "1"}
    # A list-by-id answer holds the resource, or says it is not there (as a 404 would).
    items = resources.REGISTRY["Direct Cost Line Items"]
    assert mirror.resource_body(items, [{"id": 7}, {"id": 9, "x": 1}], 9) == {"id": 9, "x": 1}
    assert mirror.resource_body(items, [{"id": 7}], 9) is mirror.Absent.NOT_LISTED
    assert mirror.procore_updated_at({"updated_at": "2026-03-02T10:15:30.123Z"}) == datetime(
        2026, 3, 2, 10, 15, 30, 123000, tzinfo=UTC
    )
    assert mirror.procore_updated_at({"updated_at": "yesterday"}) is None
    assert mirror.procore_updated_at({}) is None
    assert mirror.procore_updated_at({"updated_at": "2026-03-02T10:15:30Z"}, None) is None


async def test_writers_wait_while_the_change_feed_takes_its_horizon(db: Runtime) -> None:
    """A mirror write takes the feed lock in shared mode, so the feed's exclusive instant
    orders it: the write cannot slip a lower change_seq under a horizon already read."""
    async with db.sessions() as feed, feed.begin():
        await feed.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": Feed.RESOURCES.lock})
        write = asyncio.create_task(upsert(db, snap(T0, T0, subject="a")))
        await asyncio.sleep(0.3)
        assert not write.done()
    written = await asyncio.wait_for(write, timeout=5)
    assert written.data["subject"] == "a"
