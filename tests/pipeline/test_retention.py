"""Retention: finished events are deleted EVENTS_RETENTION_DAYS after they finished
(app.events.retention), the call audit PROCORE_CALLS_RETENTION_DAYS after the call
(app.procore.calls), oldest first, in batches; unfinished events stay however old. The
worker's `prune_history` upkeep runs both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db import SessionFactory
from app.events.retention import purge_finished
from app.models import Event, EventStatus, ProcoreCall
from app.procore.calls import prune_calls
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import add_calls, add_events
from workers import jobs


@dataclass
class _Deps:
    settings: Settings
    sessions: SessionFactory


def _with_retention(db: Runtime, days: float) -> _Deps:
    return _Deps(db.settings.model_copy(update={"events_retention_days": days}), db.sessions)


async def _ids(db: Runtime) -> set[int]:
    async with db.sessions() as session:
        return set((await session.execute(select(Event.id))).scalars())


async def test_finished_events_past_the_retention_are_deleted_and_unfinished_ones_kept(
    db: Runtime,
) -> None:
    now = datetime.now(UTC)
    old, recent, ancient = (
        now - timedelta(days=31),
        now - timedelta(days=29),
        now - timedelta(days=400),
    )
    gone: list[int] = []
    for status in (
        EventStatus.DONE,
        EventStatus.SKIPPED,
        EventStatus.DEAD,
        EventStatus.IGNORED,
        EventStatus.UNSUPPORTED,
    ):
        gone += await add_events(db, 1, status=status, finished_at=old, received_at=old)
    kept = await add_events(db, 2, status=EventStatus.DONE, finished_at=recent)
    # Unfinished, however long ago they arrived: waiting, retrying, parked, processing.
    for status in (
        EventStatus.QUEUED,
        EventStatus.RETRYING,
        EventStatus.PARKED,
        EventStatus.PROCESSING,
    ):
        kept += await add_events(db, 1, status=status, received_at=ancient, finished_at=None)

    assert await purge_finished(_with_retention(db, 30)) == len(gone)
    assert await _ids(db) == set(kept)
    # Nothing more to do: a second tick deletes nothing.
    assert await purge_finished(_with_retention(db, 30)) == 0
    assert await _ids(db) == set(kept)


async def test_a_backlog_goes_in_batches_oldest_first_a_bounded_number_per_tick(
    db: Runtime,
) -> None:
    now = datetime.now(UTC)
    ages = [40, 35, 50, 33, 60, 45, 38]  # days since they finished
    ids = [(await add_events(db, 1, finished_at=now - timedelta(days=age)))[0] for age in ages]
    by_age = [i for _, i in sorted(zip(ages, ids, strict=True), reverse=True)]
    deps = _with_retention(db, 30)

    # Two transactions of three rows this tick: the six oldest go, the youngest stays.
    assert await purge_finished(deps, batch=3, batches=2) == 6
    assert await _ids(db) == {by_age[-1]}
    assert await purge_finished(deps, batch=3, batches=2) == 1
    assert await _ids(db) == set()


async def test_a_retention_of_zero_keeps_every_event(db: Runtime) -> None:
    ancient = datetime.now(UTC) - timedelta(days=4000)
    ids = await add_events(db, 3, finished_at=ancient)
    assert await purge_finished(_with_retention(db, 0)) == 0
    async with db.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
    assert count == len(ids)


async def _call_ages(db: Runtime) -> list[int]:
    """The days since each audited call, oldest first."""
    now = datetime.now(UTC)
    async with db.sessions() as session:
        moments = (await session.execute(select(ProcoreCall.at).order_by(ProcoreCall.at))).scalars()
        return [round((now - at) / timedelta(days=1)) for at in moments]


async def test_the_call_audit_past_its_retention_goes_oldest_first(db: Runtime) -> None:
    now = datetime.now(UTC)
    await add_calls(db, [{"at": now - timedelta(days=age)} for age in (8, 10, 6, 0, 30)])

    # One transaction of one row: the oldest call only.
    assert await prune_calls(db.sessions, retention_days=7, batch=1, batches=1) == 1
    assert await _call_ages(db) == [10, 8, 6, 0]
    assert await prune_calls(db.sessions, retention_days=7) == 2
    assert await _call_ages(db) == [6, 0]


async def test_the_upkeep_prunes_events_and_calls_with_the_configured_retentions(
    db: Runtime,
) -> None:
    now = datetime.now(UTC)
    kept_event = await add_events(db, 1, finished_at=now - timedelta(days=29))
    await add_events(db, 1, finished_at=now - timedelta(days=31))
    await add_calls(db, [{"at": now - timedelta(days=age)} for age in (8, 6)])
    assert db.settings.events_retention_days == 30
    assert db.settings.procore_calls_retention_days == 7

    await jobs.prune_history({"runtime": db})

    assert await _ids(db) == set(kept_event)
    assert await _call_ages(db) == [6]


async def test_a_dead_event_replayed_before_the_purge_is_kept(db: Runtime) -> None:
    """A dead event can be replayed until it is deleted; once replayed it is unfinished
    again (queued, its finish cleared) and the purge leaves it, however long ago it died."""
    from app.admin.service import replay_event

    long_ago = datetime.now(UTC) - timedelta(days=90)
    replayed, _ = await add_events(db, 2, status=EventStatus.DEAD, finished_at=long_ago)
    async with db.sessions() as session, session.begin():
        assert await replay_event(session, replayed, force=False, actor="test") is not None

    assert await purge_finished(_with_retention(db, 30)) == 1
    assert await _ids(db) == {replayed}
    async with db.sessions() as session:
        event = await session.get(Event, replayed)
    assert event is not None
    assert event.status is EventStatus.QUEUED
    assert event.finished_at is None


def test_the_upkeep_prunes_every_ten_seconds_and_the_rest_keeps_the_dispatch_pace() -> None:
    """The prune runs every PRUNE_EVERY_S (at most PRUNE_BATCHES_PER_RUN batches of
    PRUNE_BATCH rows of each table a run), not at the dispatcher's pace."""
    from app.db import PRUNE_EVERY_S
    from tests.conftest import make_settings
    from workers.settings import upkeep_crons

    settings = make_settings("postgresql+asyncpg://x@127.0.0.1/x")
    crons = {c.name.rsplit(":", 1)[-1]: c for c in upkeep_crons(settings)}
    assert PRUNE_EVERY_S == 10
    assert crons["prune_history"].second == {0, 10, 20, 30, 40, 50}
    dispatch = set(range(0, 60, settings.dispatch_interval_seconds))
    assert crons["dispatch_due"].second == dispatch
    assert crons["prune_history"].timeout_s is not None
    assert crons["prune_history"].timeout_s < 120
