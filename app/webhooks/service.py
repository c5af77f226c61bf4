"""Durable ingest with group commit.

Every accepted webhook is committed to Postgres before it is answered. Committing one row per
request costs a round trip and an fsync each; instead, concurrent requests hand their event to
one `Ingester`, which writes whatever has gathered in one `INSERT … ON CONFLICT DO NOTHING`
(one statement, one commit) and then wakes each waiting request with its own result. Under
load, batches grow by themselves; when idle, a lone request is written at once.

After the commit, new rows are handed to the queue in the background: the answer never waits
on Redis, and a row whose hand-off failed is picked up by the dispatcher (it is in Postgres).
Rows committed within `INGEST_HANDOFF_WINDOW_SECONDS` of each other go in one job (up to
`JOB_BATCH_SIZE`): a job's fixed cost (claim, gate verdicts, one transaction to apply) is
shared, so a steady trickle of webhooks does not turn into as many one-event jobs; under load
the jobs of a few batches reach Redis in one round trip.

A request waits at most WEBHOOK_STORE_TIMEOUT_SECONDS for its batch, then is answered 503 (so
Procore retries, within its own 5 s delivery timeout): one periodic check of the waiting
requests, oldest first, keeps that deadline, not a timer per request.

Two cases skip the hand-off, so Redis stays small whatever the load:

- An event whose company or project gate is parked is stored `parked` under that gate (the
  same INSERT looks the gate up). It waits in Postgres for the gate's release, without a job,
  a worker round trip or a call. If the gate opened meanwhile, the release sweep finds it.
- While the queue already holds `INGEST_HANDOFF_MAX_JOBS` jobs (the workers are behind), new
  rows are stored without a dispatch lease and left to the dispatcher, which keeps the queue's
  backlog bounded and shares it fairly between companies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import asyncpg
import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.db import SessionFactory
from app.deadlines import Deadlines
from app.events.dispatch import release_lease
from app.gates.scopes import holding_gate_sql
from app.logs import get_logger
from app.models import EventStatus
from app.queue import enqueue_events
from app.settings import Settings
from app.webhooks.payloads import NormalisedEvent

log = get_logger(__name__)

# One statement, one implicit transaction, one round trip for the whole batch.
_INSERT = f"""
    INSERT INTO events (
        dedupe_key, payload_version, procore_event_id, company_id, project_id, user_id,
        resource_name, resource_id, event_type, reason, source_application_id, occurred_at,
        raw, status, last_error, locked_until, finished_at, gate_id
    )
    SELECT k, v, pe, c, p, u, rn, ri, et, r, sa, oa, raw,
           CASE WHEN g.id IS NULL THEN st ELSE 'parked' END,
           CASE WHEN g.id IS NULL THEN note ELSE g.reason END,
           CASE WHEN st = 'queued' AND g.id IS NULL AND $1 > 0
                THEN now() + make_interval(secs => $1) END,
           CASE WHEN st = 'queued' THEN NULL ELSE now() END,
           g.id
    -- The batch arrives as one JSON array of rows (one parameter: far cheaper to encode than
    -- an array per column), each payload embedded as its JSON value, parsed once, here.
    FROM (
        SELECT e->>0 AS k, e->>1 AS v, (e->>2)::bigint AS pe, (e->>3)::bigint AS c,
               (e->>4)::bigint AS p, (e->>5)::bigint AS u, e->>6 AS rn, (e->>7)::bigint AS ri,
               e->>8 AS et, e->>9 AS r, e->>10 AS sa, (e->>11)::timestamptz AS oa,
               e->12 AS raw, e->>13 AS st, e->>14 AS note
        FROM jsonb_array_elements($2::jsonb) AS batch(e)
    ) AS t
    -- The gate that holds the work, as the workers' verdict names it (which credential
    -- serves the company is the workers' to find out).
    LEFT JOIN LATERAL ({holding_gate_sql(company="t.c", project="t.p", resource="t.rn")}) AS g
        ON t.st = 'queued'
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key, status
"""  # noqa: S608


# How often the receiver looks at the queue's length (one ZCARD) to decide on direct hand-off.
_HANDOFF_CHECK_S = 0.5
# Jobs of JOB_BATCH_SIZE events handed to the queue in one round trip, at most.
_JOBS_PER_HANDOFF = 4


class IngestDeps(Protocol):
    """What the ingester uses: the settings, Postgres (a lease released after a failed
    hand-off; the batches themselves go through its own asyncpg connections) and the queue."""

    settings: Settings
    sessions: SessionFactory
    queue: ArqRedis


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class IngestResult:
    status: IngestStatus
    event_id: int | None = None
    # The status the new row was stored with (`queued`, `parked`, `ignored`, `unsupported`).
    stored_as: str | None = None


class StorageUnavailable(Exception):
    """Postgres could not take the event: the webhook must not be acknowledged."""


class StorageRefused(Exception):
    """Postgres refused this one event's values (the rest of its batch was stored)."""


@dataclass(slots=True)
class _Pending:
    event: NormalisedEvent
    future: asyncio.Future[IngestResult]


@dataclass(slots=True)
class _Slot:
    """One flush slot and the asyncpg connection it writes with (opened on first use, and
    again after a failure). A pool would serve the same purpose at a cost per batch (an
    acquire, a shielded release task, a reset), which is a measurable share of the receiver's
    CPU, so each slot keeps its own connection."""

    connection: asyncpg.Connection | None = None


class Ingester:
    def __init__(self, deps: IngestDeps, *, concurrency: int | None = None) -> None:
        self._deps = deps
        if concurrency is None:
            concurrency = deps.settings.ingest_connections
        # Handed in, not yet taken into a batch.
        self._pending: deque[_Pending] = deque()
        # Set by stop: the flush slots write what is pending, then end.
        self._stopping = False
        # One task per flush slot, each writing one batch at a time: when its batch has
        # committed it takes whatever gathered meanwhile and writes it at once (no hop through
        # another task, which under load waits a turn of the event loop behind the requests).
        self._all_slots = [_Slot() for _ in range(concurrency)]
        self._slot_tasks: list[asyncio.Task[None]] = []
        # The slots waiting for work: a submit wakes one.
        self._idle: deque[asyncio.Future[None]] = deque()
        self._max_batch = deps.settings.ingest_batch_max
        self._tasks: set[asyncio.Task[None]] = set()
        # Whether new rows go to the queue directly (see the module's docstring); refreshed
        # from the queue's length at most every `_HANDOFF_CHECK_S`.
        self._handoff = True
        self._handoff_checked = -_HANDOFF_CHECK_S
        self._handoff_checking = False
        # Ids committed but not yet handed to the queue: gathered for a short window, so a
        # trickle of webhooks makes jobs of several events (a job's fixed cost is shared).
        self._outgoing: list[int] = []
        self._outgoing_task: asyncio.Task[None] | None = None
        self._window = deps.settings.ingest_handoff_window_seconds
        self._job_size = deps.settings.job_batch_size
        # Each request waits at most WEBHOOK_STORE_TIMEOUT_SECONDS for its batch.
        self._deadlines = Deadlines(
            deps.settings.webhook_store_timeout_seconds, report=self._report_timeouts
        )

    def start(self) -> None:
        self._deadlines.start()
        self._stopping = False
        # The loop the deadlines keep (asking asyncio for it costs a system call on 3.11).
        loop = self._deadlines.loop
        self._slot_tasks = [
            loop.create_task(self._serve(slot), name=f"ingester-slot-{n}")
            for n, slot in enumerate(self._all_slots)
        ]

    async def stop(self) -> None:
        """Write everything handed in so far (its requests still wait for it), then stop."""
        if not self._slot_tasks:
            return
        self._stopping = True
        while self._idle:
            self._wake()  # each ends, as nothing is pending
        await asyncio.gather(*self._slot_tasks)
        self._slot_tasks = []
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._deadlines.stop()
        if self._outgoing:
            await self._hand_to_queue(self._take_outgoing())
        for slot in self._all_slots:
            _close(slot)

    async def submit(self, event: NormalisedEvent) -> IngestResult:
        """The event stored (or found a duplicate); StorageUnavailable when Postgres could not
        take it within WEBHOOK_STORE_TIMEOUT_SECONDS, StorageRefused for a value it refuses."""
        if not self._slot_tasks:
            raise StorageUnavailable("the receiver is not writing (stopped)")
        future: asyncio.Future[IngestResult] = self._deadlines.loop.create_future()
        wait = self._deadlines.add(lambda: _give_up(future))
        self._pending.append(_Pending(event, future))
        if self._idle:
            self._wake()
        try:
            return await future
        finally:
            wait.done = True

    def _wake(self) -> None:
        """Wake one idle slot."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _report_timeouts(self, count: int) -> None:
        # Answered 503, so Procore retries; their batch may still commit (the retry is then a
        # duplicate, which completes it).
        log.error("webhook.store_timeout", events=count, timeout_s=self._deadlines.seconds)

    async def _serve(self, slot: _Slot) -> None:
        """One flush slot: a batch of whatever is pending (at most INGEST_BATCH_MAX), written
        and settled, then the next; idle until a submit wakes it. Under load, batches grow by
        themselves while the slots are busy."""
        pending = self._pending
        while True:
            if not pending:
                if self._stopping:
                    return
                waiter = self._deadlines.loop.create_future()
                self._idle.append(waiter)
                await waiter
                continue
            self._check_handoff()
            size = min(len(pending), self._max_batch)
            batch = [pending.popleft() for _ in range(size)]
            try:
                await self._flush(batch, slot)
            except Exception as exc:  # a defect must not stop the slot: the batch gets 503
                log.exception("webhook.flush_failed", events=len(batch))
                _unavailable(batch, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_handoff(self) -> None:
        now = self._deadlines.loop.time()
        if self._handoff_checking or now - self._handoff_checked < _HANDOFF_CHECK_S:
            return
        self._handoff_checking = True
        self._handoff_checked = now
        self._spawn(self._measure_queue())

    async def _measure_queue(self) -> None:
        limit = self._deps.settings.ingest_handoff_max_jobs
        try:
            jobs = await self._deps.queue.zcard(self._deps.settings.queue_name)
        except (RedisError, OSError):
            # Redis is away: leave new rows to the dispatcher, which retries its hand-off.
            jobs = limit
        finally:
            self._handoff_checking = False
        handoff = jobs < limit
        if handoff != self._handoff:
            log.info("webhook.handoff_resumed" if handoff else "webhook.handoff_paused", jobs=jobs)
            self._handoff = handoff

    async def _flush(self, batch: list[_Pending], slot: _Slot) -> None:
        # Decided once per batch: a row stored with a dispatch lease is the one handed off.
        handoff = self._handoff
        try:
            stored = await self._insert(slot, [p.event for p in batch], handoff=handoff)
        except (asyncpg.PostgresError, orjson.JSONEncodeError) as exc:
            if isinstance(exc, asyncpg.PostgresError) and _is_unavailable(exc):
                self._fail(batch, exc)
            else:
                # A value Postgres refuses: store the batch one by one so that one bad event
                # is refused alone and the others are stored.
                await self._insert_one_by_one(slot, batch, handoff=handoff)
            return
        except (asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self._fail(batch, exc)
            return
        self._settle(batch, stored, handoff=handoff)

    async def _insert(
        self, slot: _Slot, events: Sequence[NormalisedEvent], *, handoff: bool
    ) -> dict[str, tuple[int, str]]:
        """Store the events; returns {dedupe_key: (id, stored status)} of the new rows.

        A row to be handed to the queue directly gets a dispatch lease, so the dispatcher does
        not enqueue it too; without a lease (0) the dispatcher takes it.

        The statement goes straight to the driver, without an ORM session, a BEGIN/COMMIT pair
        or a pre-ping. After a failure that may have left the connection in doubt (anything
        but a value Postgres refused), the slot opens a new one for its next batch.
        """
        lease = self._deps.settings.dispatch_lease_seconds if handoff else 0.0
        batch = _batch_json(events)
        connection = slot.connection
        if connection is None or connection.is_closed():
            connection = slot.connection = await self._connect()
        try:
            rows = await connection.fetch(_INSERT, lease, batch)
        except asyncpg.PostgresError as exc:
            # A refused value leaves the connection as it was: one statement, outside any
            # transaction, which Postgres has already ended.
            if _is_unavailable(exc):
                _close(slot)
            raise
        except BaseException:
            _close(slot)
            raise
        return {key: (event_id, status) for event_id, key, status in rows}

    async def _connect(self) -> asyncpg.Connection:
        """A connection of the ingester's own (opened on first use, so the api starts while
        Postgres is down)."""
        url = make_url(self._deps.settings.database_url)
        connection: asyncpg.Connection = await asyncpg.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            timeout=3,
            command_timeout=10,
            server_settings={"application_name": "procore-hooks-ingest"},
        )
        return connection

    def _settle(
        self, batch: list[_Pending], stored: dict[str, tuple[int, str]], *, handoff: bool
    ) -> None:
        """Wake each request: the first holder of a new key is accepted, the rest duplicates."""
        to_queue: list[int] = []
        for pending in batch:
            row = stored.pop(pending.event.dedupe_key, None)
            if row is None:
                result = IngestResult(IngestStatus.DUPLICATE)
            else:
                event_id, status = row
                result = IngestResult(IngestStatus.ACCEPTED, event_id, status)
                if status == EventStatus.QUEUED:  # (a StrEnum: equal to its text)
                    to_queue.append(event_id)
            if not pending.future.done():
                pending.future.set_result(result)
        if to_queue and handoff:
            self._gather_outgoing(to_queue)

    async def _insert_one_by_one(
        self, slot: _Slot, batch: list[_Pending], *, handoff: bool
    ) -> None:
        for pending in batch:
            try:
                stored = await self._insert(slot, [pending.event], handoff=handoff)
            except (asyncpg.PostgresError, orjson.JSONEncodeError) as exc:
                if isinstance(exc, asyncpg.PostgresError) and _is_unavailable(exc):
                    self._fail([pending], exc)
                    continue
                log.warning(
                    "webhook.refused_by_database",
                    dedupe_key=pending.event.dedupe_key,
                    error=str(exc)[:200],
                )
                if not pending.future.done():
                    pending.future.set_exception(StorageRefused(str(exc)[:200]))
                continue
            except (asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                self._fail([pending], exc)
                continue
            self._settle([pending], stored, handoff=handoff)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        log.error("webhook.storage_unavailable", events=len(batch), error=str(exc)[:200])
        _unavailable(batch, exc)

    def _gather_outgoing(self, event_ids: list[int]) -> None:
        self._outgoing += event_ids
        # Handed off at the end of the window, or as soon as a few jobs' worth gathered (one
        # round trip to Redis carries them all).
        if len(self._outgoing) >= self._job_size * _JOBS_PER_HANDOFF:
            self._spawn(self._hand_to_queue(self._take_outgoing()))
        elif self._outgoing_task is None:
            self._outgoing_task = asyncio.create_task(self._hand_after_window())
            self._tasks.add(self._outgoing_task)
            self._outgoing_task.add_done_callback(self._tasks.discard)

    async def _hand_after_window(self) -> None:
        try:
            await asyncio.sleep(self._window)
        finally:
            self._outgoing_task = None
        if self._outgoing:
            await self._hand_to_queue(self._take_outgoing())

    def _take_outgoing(self) -> list[int]:
        taken, self._outgoing = self._outgoing, []
        return taken

    async def _hand_to_queue(self, event_ids: list[int]) -> None:
        """One job per JOB_BATCH_SIZE ids, all in one round trip to Redis."""
        try:
            await enqueue_events(self._deps.queue, event_ids, per_job=self._job_size)
        except (RedisError, OSError) as exc:
            log.warning("webhook.enqueue_failed", events=len(event_ids), error=str(exc))
            # Let the dispatcher take them at its next tick instead of after the lease.
            with contextlib.suppress(SQLAlchemyError, OSError):
                async with self._deps.sessions() as session, session.begin():
                    await release_lease(session, event_ids)


def _unavailable(batch: list[_Pending], exc: BaseException) -> None:
    """Answer each request of the batch unavailable (503: Procore retries)."""
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(StorageUnavailable(str(exc)[:200]))


def _give_up(future: asyncio.Future[IngestResult]) -> bool:
    if future.done():
        return False
    future.set_exception(StorageUnavailable("not stored within WEBHOOK_STORE_TIMEOUT_SECONDS"))
    return True


def _batch_json(events: Sequence[NormalisedEvent]) -> str:
    """The rows of one INSERT as a JSON array (the columns in `_INSERT`'s order). Every text
    was decoded from JSON (NUL characters and lone surrogates already replaced), and `raw` is
    the payload's own JSON text, embedded as it is."""
    return orjson.dumps(
        [
            (
                e.dedupe_key,
                e.payload_version,
                e.procore_event_id,
                e.company_id,
                e.project_id,
                e.user_id,
                e.resource_name,
                e.resource_id,
                e.event_type,
                e.reason,
                e.source_application_id,
                e.occurred_at,
                orjson.Fragment(e.raw),
                e.status,  # (orjson writes an enum as its value)
                e.note,
            )
            for e in events
        ]
    ).decode()


def _close(slot: _Slot) -> None:
    """The slot's connection closed (at once: it may be in doubt, or the api is stopping)."""
    connection, slot.connection = slot.connection, None
    if connection is not None and not connection.is_closed():
        connection.terminate()


def _is_unavailable(exc: asyncpg.PostgresError) -> bool:
    """Connection-level failures (server gone, shutting down) versus a refused value."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    # 08: connection exception; 57: operator intervention (shutdown); 53: insufficient
    # resources; 28 / 3D: the login or the database refused (a connection being opened);
    # 40001/40P01: serialization / deadlock (retryable, not the event's fault).
    return (
        sqlstate[:2] in {"08", "57", "53", "28", "3D"}
        or sqlstate in {"40001", "40P01"}
        or not sqlstate
    )
