"""Delivery rounds, run by the workers (`deliver` jobs) under a destination's lease.

What to deliver is derived from Postgres, never held in Redis: each destination keeps a
position per feed (`destination_cursors`), and a round reads what follows it (`app.feed`),
sends it, and moves the position past what the destination answered — in the transaction that
records the attempts, the dead letters and the destination's new state. So a Redis flush, a
killed worker or a destination down for a day loses nothing and reorders nothing: the next
round starts where the last committed one ended (what was sent but not committed is sent
again: at least once).

- One sender per destination across all workers: the lease on its row (`locked_until`), which
  every write is fenced by. A worker that finds no more work releases the lease and looks
  once more, so a change committed while it was finishing is never left waiting.
- Ordered per resource: a round sends at most `window` messages at once, never two of the
  same resource (or gate) at once, and stops at its first failure; the position only moves
  past a prefix of answered messages.
- The state (open, suspect, parked), retries, probes and the paced release are the pure
  rules of `app.delivery.policy`.
- Dead letters (a refusal: 4xx other than 408/429) are kept and replayed first, in order,
  once an operator asks.

Jobs are woken right after a batch of events commits (`wake`) and, as a backstop and for
retries and probes, by the `tend` cron, which also prunes old attempts.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.crypto import Vault
from app.db import SessionFactory
from app.delivery import policy, sender
from app.delivery.addresses import AddressRules, Resolver, system_resolver
from app.delivery.sender import Answer
from app.feed import sources
from app.feed.messages import Message, Source
from app.feed.sources import Interest
from app.logs import get_logger
from app.models import DestinationState
from app.queue import enqueue_delivery, enqueue_delivery_tick
from app.settings import Settings

log = get_logger(__name__)

# A job hands its destination back after this long; the next one goes on from its position.
JOB_BUDGET_SECONDS = 30.0
SOURCES: tuple[Source, ...] = (Source.RESOURCES, Source.OUTBOX, Source.GATES)

_rng = random.Random()


class LeaseLost(Exception):
    """Another worker holds the destination now (this one's lease ran out)."""


class DeliveryDeps(Protocol):
    """What a delivery round needs: Postgres, the vault for the destinations' secrets, the
    settings and the outbound client (never the one that calls Procore). The edges pass the
    process's Runtime, which has all of these (mypy checks it)."""

    sessions: SessionFactory
    vault: Vault
    settings: Settings
    outbound: httpx.AsyncClient


class HandOffDeps(Protocol):
    """What handing destinations to the workers needs (`wake`, `tend`): Postgres, the queue
    and the settings."""

    sessions: SessionFactory
    queue: ArqRedis
    settings: Settings


@dataclass(frozen=True, slots=True)
class Held:
    """A destination as a round needs it, read under its lease."""

    id: int
    url: str
    include_object: bool
    interest: Interest
    secrets: tuple[str, ...]
    view: policy.View
    positions: dict[Source, int]


@dataclass(slots=True)
class Item:
    message_id: str
    type: str
    body: dict[str, Any]
    ordering_key: str
    source: Source
    position: int
    dead_letter_id: int | None = None

    @property
    def replay(self) -> bool:
        return self.dead_letter_id is not None


@dataclass(slots=True)
class Work:
    items: list[Item] = field(default_factory=list)
    # The feed the items came from and where the destination stands once all are answered.
    source: Source | None = None
    after: int = 0
    position: int = 0

    @property
    def empty(self) -> bool:
        return not self.items and (self.source is None or self.position == self.after)


# --- leases ---------------------------------------------------------------------------------

_CLAIM = text(
    """
    UPDATE destinations SET locked_until = now() + make_interval(secs => :lease)
    WHERE id = :id AND enabled AND (locked_until IS NULL OR locked_until < now())
    RETURNING locked_until
    """
)
_RELEASE = text("UPDATE destinations SET locked_until = NULL WHERE id = :id AND locked_until = :l")


async def _claim(sessions: SessionFactory, destination_id: int, lease_s: float) -> datetime | None:
    async with sessions() as session, session.begin():
        claimed: datetime | None = (
            await session.execute(_CLAIM, {"id": destination_id, "lease": lease_s})
        ).scalar()
    return claimed


async def _release(sessions: SessionFactory, destination_id: int, lease: datetime) -> None:
    async with sessions() as session, session.begin():
        await session.execute(_RELEASE, {"id": destination_id, "l": lease})


# --- reading a destination and its work -------------------------------------------------------

_LOAD = text(
    """
    SELECT id, url, include_object, event_types, company_ids, resource_names, secret_enc,
           previous_secret_enc, previous_secret_expires_at > now() AS overlap, state, failures,
           probe_attempt, send_window, next_attempt_at, parked_at
    FROM destinations WHERE id = :id
    """
)
_POSITIONS = text("SELECT source, position FROM destination_cursors WHERE destination_id = :id")
_REPLAYS = text(
    """
    SELECT id, message_id, type, source, position, body FROM dead_letters
    WHERE destination_id = :id AND replay_requested_at IS NOT NULL AND replayed_at IS NULL
    ORDER BY id LIMIT :limit
    """
)


def _tuple(values: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


async def _load(session: AsyncSession, vault: Vault, destination_id: int) -> Held | None:
    row = (await session.execute(_LOAD, {"id": destination_id})).first()
    if row is None:
        return None
    secrets = [vault.decrypt(row.secret_enc)]
    if row.previous_secret_enc is not None and row.overlap:
        secrets.append(vault.decrypt(row.previous_secret_enc))
    positions = {
        Source(source): int(position)
        for source, position in await session.execute(_POSITIONS, {"id": destination_id})
        if source in Source.__members__.values()
    }
    return Held(
        id=int(row.id),
        url=row.url,
        include_object=bool(row.include_object),
        interest=Interest(
            event_types=_tuple(row.event_types),
            company_ids=_tuple(row.company_ids),
            resource_names=_tuple(row.resource_names),
        ),
        secrets=tuple(secrets),
        view=policy.View(
            state=DestinationState(row.state),
            failures=int(row.failures),
            probe_attempt=int(row.probe_attempt),
            window=int(row.send_window),
            next_attempt_at=row.next_attempt_at,
            parked_at=row.parked_at,
        ),
        positions=positions,
    )


def _item(message: Message, include_object: bool) -> Item:
    return Item(
        message_id=message.id,
        type=message.type,
        body=message.body(include_object=include_object),
        ordering_key=message.ordering_key,
        source=message.source,
        position=message.position,
    )


async def _next_work(sessions: SessionFactory, held: Held, size: int) -> Work:
    """Replays an operator asked for come first; then the first feed with something after
    the destination's position (a parked destination's probe is the oldest message held)."""
    async with sessions() as session:
        replays = (await session.execute(_REPLAYS, {"id": held.id, "limit": size})).all()
    if replays:
        return Work(
            items=[
                Item(
                    message_id=r.message_id,
                    type=r.type,
                    body=r.body,
                    ordering_key=f"replay:{r.id}",
                    source=Source(r.source),
                    position=int(r.position),
                    dead_letter_id=int(r.id),
                )
                for r in replays
            ]
        )
    for source in SOURCES:
        # A feed the destination has no position in yet (one added later) starts at its
        # beginning.
        after = held.positions.get(source, 0)
        batch = await sources.read(sessions, source, after, size, held.interest)
        if batch.messages or batch.position != after:
            return Work(
                items=[_item(m, held.include_object) for m in batch.messages],
                source=source,
                after=after,
                position=batch.position,
            )
    return Work()


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sending:
    client: Any
    rules: AddressRules
    timeout_s: float
    max_answer_bytes: int
    resolver: Resolver


async def _send_round(
    held: Held, items: Sequence[Item], in_flight: int, how: Sending
) -> dict[int, Answer]:
    """Send the items, `in_flight` at most at once and one key's items one after the other,
    stopping at the first failure. Returns the answers by index (unsent items are absent)."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for index, item in enumerate(items):
        groups.setdefault(item.ordering_key, []).append(index)
    answers: dict[int, Answer] = {}
    gate = asyncio.Semaphore(in_flight)
    stop = asyncio.Event()

    async def one_key(indexes: list[int]) -> None:
        for index in indexes:
            if stop.is_set():
                return
            async with gate:
                if stop.is_set():
                    return
                item = items[index]
                answer = await sender.send(
                    how.client,
                    held.url,
                    message_id=item.message_id,
                    body=orjson.dumps(item.body),
                    secrets_in_use=held.secrets,
                    rules=how.rules,
                    timeout_s=how.timeout_s,
                    max_answer_bytes=how.max_answer_bytes,
                    resolver=how.resolver,
                )
            answers[index] = answer
            if not answer.answered:
                stop.set()
                return

    await asyncio.gather(*(one_key(indexes) for indexes in groups.values()))
    return answers


# --- applying a round ----------------------------------------------------------------------

_ATTEMPTS = text(
    """
    INSERT INTO delivery_attempts (destination_id, message_id, type, outcome, status, error,
                                   latency_ms, replay)
    SELECT :id, * FROM unnest(CAST(:mid AS text[]), CAST(:type AS text[]),
        CAST(:outcome AS text[]), CAST(:status AS int[]), CAST(:error AS text[]),
        CAST(:latency AS int[]), CAST(:replay AS boolean[]))
    """
)
_DEAD = text(
    """
    INSERT INTO dead_letters (destination_id, message_id, type, source, position, body, status,
                              answer)
    VALUES (:id, :mid, :type, :source, :position, CAST(:body AS jsonb), :status, :answer)
    """
)
_REPLAYED = text(
    """
    UPDATE dead_letters SET replays = replays + 1, replay_requested_at = NULL,
        replayed_at = CASE WHEN :delivered THEN now() END,
        status = :status, answer = COALESCE(:answer, answer)
    WHERE id = :letter
    """
)
_MOVE = text(
    """
    INSERT INTO destination_cursors (destination_id, source, position) VALUES (:id, :s, :p)
    ON CONFLICT (destination_id, source) DO UPDATE SET position = excluded.position
    WHERE destination_cursors.position < excluded.position
    """
)
_STATE = text(
    """
    UPDATE destinations SET state = :state, failures = :failures, probe_attempt = :probe_attempt,
        send_window = :window, next_attempt_at = :next_attempt_at, parked_at = :parked_at,
        delivered = delivered + :delivered, dead = dead + :dead, failed = failed + :failed,
        last_status = COALESCE(:last_status, last_status),
        last_error = CASE WHEN :sent THEN :last_error ELSE last_error END,
        last_attempt_at = CASE WHEN :sent THEN now() ELSE last_attempt_at END,
        last_delivered_at = CASE WHEN :delivered > 0 THEN now() ELSE last_delivered_at END,
        locked_until = now() + make_interval(secs => :lease), updated_at = now()
    WHERE id = :id AND locked_until = :held_lease
    RETURNING locked_until
    """
)


@dataclass(frozen=True, slots=True)
class RoundResult:
    lease: datetime
    delivered: int
    failed: bool
    actions: tuple[policy.Action, ...]


def _answered_prefix(work: Work, answers: dict[int, Answer]) -> int | None:
    """Where the destination stands after this round: past everything before the first
    message not answered (None: the position does not move)."""
    if work.source is None:
        return None
    for index, item in enumerate(work.items):
        answer = answers.get(index)
        if answer is None or not answer.answered:
            return item.position - 1 if item.position - 1 > work.after else None
    return work.position


async def _apply(
    sessions: SessionFactory,
    held: Held,
    lease: datetime,
    work: Work,
    answers: dict[int, Answer],
    rules: policy.Rules,
    lease_s: float,
) -> RoundResult:
    sent = [(work.items[i], a) for i, a in sorted(answers.items())]
    delivered = sum(a.outcome == "delivered" for _, a in sent)
    dead = sum(a.outcome == "dead" for _, a in sent)
    failures = [a for _, a in sent if not a.answered]
    decision = policy.after_round(
        held.view,
        answered=delivered + dead,
        failed=bool(failures),
        now=datetime.now(UTC),
        rules=rules,
        rng=_rng,
        retry_after=failures[0].retry_after if failures else None,
    )
    view = decision.view
    last = sent[-1][1] if sent else None
    if failures:
        last = failures[0]
    async with sessions() as session, session.begin():
        renewed = (
            await session.execute(
                _STATE,
                {
                    "id": held.id,
                    "held_lease": lease,
                    "lease": lease_s,
                    "state": view.state.value,
                    "failures": view.failures,
                    "probe_attempt": view.probe_attempt,
                    "window": view.window,
                    "next_attempt_at": view.next_attempt_at,
                    "parked_at": view.parked_at,
                    "delivered": delivered,
                    "dead": dead,
                    "failed": len(failures),
                    "sent": bool(sent),
                    "last_status": None if last is None else last.status,
                    "last_error": None if last is None else last.error,
                },
            )
        ).scalar()
        if renewed is None:
            raise LeaseLost(f"destination {held.id}")
        if sent:
            await session.execute(
                _ATTEMPTS,
                {
                    "id": held.id,
                    "mid": [i.message_id for i, _ in sent],
                    "type": [i.type for i, _ in sent],
                    "outcome": [a.outcome for _, a in sent],
                    "status": [a.status for _, a in sent],
                    "error": [None if a.error is None else a.error[:2000] for _, a in sent],
                    "latency": [a.latency_ms for _, a in sent],
                    "replay": [i.replay for i, _ in sent],
                },
            )
        for item, answer in sent:
            if item.dead_letter_id is not None:
                if answer.answered:
                    await session.execute(
                        _REPLAYED,
                        {
                            "letter": item.dead_letter_id,
                            "delivered": answer.outcome == "delivered",
                            "status": answer.status,
                            "answer": answer.error,
                        },
                    )
            elif answer.outcome == "dead":
                await session.execute(
                    _DEAD,
                    {
                        "id": held.id,
                        "mid": item.message_id,
                        "type": item.type,
                        "source": item.source.value,
                        "position": item.position,
                        "body": orjson.dumps(item.body).decode(),
                        "status": answer.status,
                        "answer": None if answer.error is None else answer.error[:2000],
                    },
                )
        position = _answered_prefix(work, answers)
        if position is not None and work.source is not None:
            await session.execute(_MOVE, {"id": held.id, "s": work.source.value, "p": position})
    for item, answer in sent:
        metrics.delivery_attempt(answer.outcome, answer.latency_ms / 1000, item.type)
    _log_transition(held, decision, last)
    return RoundResult(renewed, delivered, bool(failures), decision.actions)


def _log_transition(held: Held, decision: policy.Decision, last: Answer | None) -> None:
    why = None if last is None else (last.error or str(last.status))
    if policy.Action.PARK in decision.actions:
        log.warning(
            "delivery.parked",
            destination_id=held.id,
            failures=decision.view.failures,
            next_probe_at=str(decision.view.next_attempt_at),
            error=why,
        )
        metrics.destination_transition("parked")
    elif policy.Action.RELEASE in decision.actions:
        log.info("delivery.released", destination_id=held.id)
        metrics.destination_transition("released")
    elif held.view.state is DestinationState.OPEN and decision.view.state is not held.view.state:
        log.info("delivery.suspect", destination_id=held.id, error=why)
        metrics.destination_transition("suspect")


# --- the job --------------------------------------------------------------------------------


def _sending(deps: DeliveryDeps, resolver: Resolver | None) -> Sending:
    settings = deps.settings
    return Sending(
        client=deps.outbound,
        rules=AddressRules.of(settings),
        timeout_s=settings.delivery_timeout_seconds,
        max_answer_bytes=settings.delivery_max_answer_bytes,
        resolver=resolver or system_resolver,
    )


async def deliver(
    deps: DeliveryDeps,
    destination_id: int,
    *,
    budget_s: float = JOB_BUDGET_SECONDS,
    resolver: Resolver | None = None,
) -> int:
    """Deliver what the destination holds, as far as its state allows, within the budget;
    returns how many messages were delivered. Nothing happens if another worker holds it."""
    settings = deps.settings
    rules = policy.Rules.of(settings)
    how = _sending(deps, resolver)
    deadline = time.monotonic() + budget_s
    total = 0
    while True:
        claimed = await _claim(deps.sessions, destination_id, settings.delivery_lease_seconds)
        if claimed is None:
            return total
        lease = _Lease(claimed)
        try:
            while True:
                delivered, idle = await _rounds(deps, destination_id, lease, deadline, rules, how)
                total += delivered
                # Everything sent: stay a moment for what comes next (a busy feed then
                # streams through one job instead of one per change).
                if not idle or not await _linger(deps, destination_id, deadline):
                    break
        except LeaseLost:
            log.warning("delivery.lease_lost", destination_id=destination_id)
            return total
        finally:
            await _release(deps.sessions, destination_id, lease.value)
        # Released: a change committed while this round was ending found the lease held and
        # left it to this worker, which looks once more.
        if time.monotonic() > deadline or not await pending(deps, destination_id):
            return total


@dataclass(slots=True)
class _Lease:
    value: datetime


_LINGER_POLL_S = 0.02
_MAX_LINGERING = 2
_lingering = 0

# Cheap: sequence values and an index probe, no feed lock (the rounds take the horizon).
_MOVED = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM destination_cursors c
        WHERE c.destination_id = :id AND (
            (c.source = 'resources' AND c.position < (
                SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                FROM resource_change_seq))
            OR (c.source = 'outbox' AND c.position < (
                SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                FROM outbox_id_seq)))
    ) OR EXISTS (
        SELECT 1 FROM dead_letters WHERE destination_id = :id
          AND replay_requested_at IS NOT NULL AND replayed_at IS NULL)
    """
)


async def _moved(sessions: SessionFactory, destination_id: int) -> bool:
    async with sessions() as session:
        return bool((await session.execute(_MOVED, {"id": destination_id})).scalar())


async def _linger(deps: DeliveryDeps, destination_id: int, deadline: float) -> bool:
    """Wait up to DELIVERY_LINGER_SECONDS for the feeds to move past the destination; True if
    they did (the caller delivers on, still holding the lease)."""
    global _lingering
    linger = deps.settings.delivery_linger_seconds
    if linger <= 0 or _lingering >= _MAX_LINGERING:
        return False
    _lingering += 1
    try:
        ends = min(deadline, time.monotonic() + linger)
        while time.monotonic() < ends:
            if await _moved(deps.sessions, destination_id):
                return True
            await asyncio.sleep(_LINGER_POLL_S)
        return False
    finally:
        _lingering -= 1


async def _rounds(
    deps: DeliveryDeps,
    destination_id: int,
    lease: _Lease,
    deadline: float,
    rules: policy.Rules,
    how: Sending,
) -> tuple[int, bool]:
    """Rounds until nothing is left, the state allows no more, a failure, or the deadline.
    Returns (delivered, idle): idle when everything held was sent."""
    settings = deps.settings
    delivered = 0
    while time.monotonic() < deadline:
        async with deps.sessions() as session:
            held = await _load(session, deps.vault, destination_id)
        if held is None:
            return delivered, False
        size = policy.round_size(held.view, datetime.now(UTC), rules)
        if size == 0:
            return delivered, False
        work = await _next_work(deps.sessions, held, size)
        if work.empty:
            return delivered, held.view.state is DestinationState.OPEN
        answers = await _send_round(held, work.items, policy.in_flight(held.view, rules), how)
        result = await _apply(
            deps.sessions,
            held,
            lease.value,
            work,
            answers,
            rules,
            settings.delivery_lease_seconds,
        )
        lease.value = result.lease
        delivered += result.delivered
        if result.failed:
            return delivered, False
    return delivered, False


_PENDING_REPLAY = text(
    """
    SELECT EXISTS (SELECT 1 FROM dead_letters WHERE destination_id = :id
                   AND replay_requested_at IS NOT NULL AND replayed_at IS NULL)
    """
)


async def pending(deps: DeliveryDeps, destination_id: int) -> bool:
    """Whether the destination has something to send now (its state allowing)."""
    async with deps.sessions() as session:
        held = await _load(session, deps.vault, destination_id)
        if held is None:
            return False
        if policy.round_size(held.view, datetime.now(UTC), policy.Rules.of(deps.settings)) == 0:
            return False
        if (await session.execute(_PENDING_REPLAY, {"id": destination_id})).scalar():
            return True
    for source in SOURCES:
        if await sources.head(deps.sessions, source) > held.positions.get(source, 0):
            return True
    return False


# --- waking the workers -------------------------------------------------------------------

_AWAKE = text("SELECT id FROM destinations WHERE enabled AND state <> 'parked' ORDER BY id")
_awake_cache: dict[str, tuple[float, list[int]]] = {}
_AWAKE_TTL_S = 1.0


async def wake(deps: HandOffDeps) -> int:
    """After changes committed: a `deliver` job for every destination that can receive now.

    One waiting job per destination (a fixed job id: arq refuses a second while one waits or
    runs, and the one running looks again before it ends). The list of destinations is kept a
    second in this process. Redis being down costs only the delay until the next `tend`."""
    key = deps.settings.database_url
    cached = _awake_cache.get(key)
    now = time.monotonic()
    if cached is None or cached[0] < now:
        async with deps.sessions() as session:
            ids = [int(i) for i in (await session.execute(_AWAKE)).scalars()]
        _awake_cache[key] = cached = (now + _AWAKE_TTL_S, ids)
    try:
        for destination_id in cached[1]:
            await kick(deps.queue, destination_id)
    except (RedisError, OSError) as exc:
        log.warning("delivery.wake_failed", error=str(exc) or type(exc).__name__)
        return 0
    return len(cached[1])


async def kick(queue: ArqRedis, destination_id: int) -> None:
    """A `deliver` job for the destination, unless one waits or runs already."""
    await enqueue_delivery(queue, destination_id)


def forget_cached() -> None:
    """Destinations changed (added, removed, enabled): the next wake reads them again."""
    _awake_cache.clear()


# --- upkeep -----------------------------------------------------------------------------------

_DUE = text(
    """
    SELECT d.id FROM destinations d
    WHERE d.enabled AND (d.locked_until IS NULL OR d.locked_until < now())
      AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())
      AND (
        EXISTS (SELECT 1 FROM dead_letters l WHERE l.destination_id = d.id
                AND l.replay_requested_at IS NOT NULL AND l.replayed_at IS NULL)
        OR EXISTS (
            SELECT 1 FROM unnest(CAST(:sources AS text[]), CAST(:heads AS bigint[])) AS h(s, n)
            LEFT JOIN destination_cursors c ON c.destination_id = d.id AND c.source = h.s
            WHERE COALESCE(c.position, 0) < h.n))
    ORDER BY d.id LIMIT :limit
    """
)
_PRUNE_ATTEMPTS = text(
    """
    DELETE FROM delivery_attempts WHERE id IN (
        SELECT id FROM delivery_attempts WHERE at < now() - make_interval(secs => :age)
        ORDER BY id LIMIT :batch)
    """
)
# Outbox rows every destination is past, and older than the attempts' retention.
_PRUNE_OUTBOX = text(
    """
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox
        WHERE at < now() - make_interval(secs => :age)
          AND id <= COALESCE((SELECT min(COALESCE(c.position, 0)) FROM destinations d
                              LEFT JOIN destination_cursors c
                                ON c.destination_id = d.id AND c.source = 'outbox'),
                             9223372036854775807)
        ORDER BY id LIMIT :batch)
    """
)
_PRUNE_BATCH = 5000
_TICK_LIMIT = 200


async def tend(deps: HandOffDeps) -> int:
    """Hand due destinations (retries, probes, anything left behind) to the workers, and
    prune old attempts. Returns how many jobs were enqueued."""
    heads = {source: await sources.head(deps.sessions, source) for source in SOURCES}
    age = deps.settings.delivery_attempts_retention_hours * 3600
    async with deps.sessions() as session, session.begin():
        due = [
            int(i)
            for i in (
                await session.execute(
                    _DUE,
                    {
                        "sources": [s.value for s in heads],
                        "heads": list(heads.values()),
                        "limit": _TICK_LIMIT,
                    },
                )
            ).scalars()
        ]
        await session.execute(_PRUNE_ATTEMPTS, {"age": age, "batch": _PRUNE_BATCH})
        await session.execute(_PRUNE_OUTBOX, {"age": age, "batch": _PRUNE_BATCH})
    stamp = int(time.time())
    for destination_id in due:
        await enqueue_delivery_tick(deps.queue, destination_id, stamp)
    return len(due)
