"""Procore's webhook delivery, endpoint by endpoint (FACTS.md §2).

- One JSON event per POST, the hook's `Authorization` value sent verbatim, a 5 s timeout.
- Only a 2xx answer counts. Any failure (other status, timeout, connection error) pauses
  every delivery to that endpoint: the failed event goes back to the head of the queue and
  the endpoint is retried after 1 s, 2 s, 4 s, … capped at 1 h.
- After 12 h of failure the queued events are discarded; a success resets the cycle.
- Optionally, a hook is deactivated after N failed attempts in a row (some docs say so).

`time_scale` multiplies every delay (backoff and retention), so a test can run a 12-hour
failure cycle in a second. Delivery order is queue order; duplicates (at-least-once) are
extra copies of the same body placed at the end of the queue, and reordered deliveries are
held back behind the later events of the same publication (Procore does not promise order).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.payloads import Change, EventIds, PayloadVersion, ShapeOptions, render

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 3600.0
RETENTION_S = 12 * 3600.0
ATTEMPT_LOG_SIZE = 10_000
# Deliveries the Deliveries API can list, per hook (the oldest are forgotten).
DELIVERY_RECORDS = 50_000


def backoff_s(failures: int, time_scale: float = 1.0) -> float:
    """The pause after the n-th failure in a row: 1 s, 2 s, 4 s, … capped at 1 h."""
    # The exponent is capped only so the arithmetic stays finite; the delay cap rules.
    doubling = float(2 ** min(failures - 1, 32))
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * doubling) * time_scale


class HookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    destination_url: str = Field(min_length=1)
    authorization: str = ""
    payload_version: PayloadVersion = PayloadVersion.V2
    time_scale: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)
    short_api_version: bool = False
    omit_null_project_id: bool = False
    # Parallel POSTs to this endpoint; a failure still pauses all of them.
    concurrency: int = Field(default=1, ge=1, le=256)
    deactivate_after_failures: int | None = Field(default=None, ge=1)

    @field_validator("destination_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(str(exc)) from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("destination_url must be an http(s) URL")
        return value

    def shape(self) -> ShapeOptions:
        return ShapeOptions(self.short_api_version, self.omit_null_project_id)


@dataclass(slots=True)
class Delivery:
    event_id: str
    body: bytes
    duplicate: bool = False


@dataclass(slots=True)
class DeliveryRecord:
    """One event's delivery as Procore's Deliveries API shows it (OpenAPI
    `WebhooksDelivery`): outcome `ok`, `retried` (failed, to be tried again), `failed` or
    `discarded` (given up after 12 h of failure, or the hook deactivated)."""

    seq: int
    body: bytes
    outcome: str = "retried"
    response_status: int | None = None
    response_error: str | None = None
    started_at: float | None = None
    completed_at: float | None = None

    def view(self) -> dict[str, Any]:
        event = orjson.loads(self.body)
        return {
            "event": event,
            "event_id": event.get("id"),
            "outcome": self.outcome,
            "response_status": self.response_status,
            "response_headers": {},
            "response_body": None,
            "response_error": self.response_error,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
        }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Hook:
    id: int
    settings: HookSettings
    queue: deque[Delivery] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    active: bool = True
    in_flight: int = 0
    failures: int = 0  # failed attempts in the current cycle
    failing_since: float | None = None  # loop time of the cycle's first failure
    paused_until: float | None = None
    epoch: int = 0  # bumped at each pause, so parallel failures count once
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ATTEMPT_LOG_SIZE))
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    # Hooks made through the Webhooks API hear only their company's triggered changes.
    accepts: Callable[[Change], bool] | None = None
    deliveries: OrderedDict[str, DeliveryRecord] = field(default_factory=OrderedDict)
    _seq: int = 0

    def record(self, delivery: Delivery) -> DeliveryRecord:
        found = self.deliveries.get(delivery.event_id)
        if found is None:
            self._seq += 1
            found = self.deliveries[delivery.event_id] = DeliveryRecord(self._seq, delivery.body)
            while len(self.deliveries) > DELIVERY_RECORDS:
                self.deliveries.popitem(last=False)
        return found

    def view(self, now: float) -> dict[str, Any]:
        paused_for = None if self.paused_until is None else max(0.0, self.paused_until - now)
        return {
            "id": self.id,
            "destination_url": self.settings.destination_url,
            "payload_version": self.settings.payload_version.value,
            "time_scale": self.settings.time_scale,
            "active": self.active,
            "queued": len(self.queue),
            "in_flight": self.in_flight,
            "failures": self.failures,
            "paused_for_s": paused_for,
            "outcomes": dict(self.outcomes),
        }


class Sender:
    def __init__(self) -> None:
        self.hooks: dict[int, Hook] = {}
        self.outcomes: Counter[str] = Counter()
        self._next_id = 1
        self._client: httpx.AsyncClient | None = None
        self._posts: set[asyncio.Task[tuple[str, int | None]]] = set()

    async def open(self) -> None:
        self._client = httpx.AsyncClient(
            trust_env=False, limits=httpx.Limits(max_connections=512, max_keepalive_connections=64)
        )

    async def close(self) -> None:
        await self.clear()
        # POSTs of removed hooks finish on their own, within their timeout.
        await asyncio.gather(*self._posts, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def clear(self) -> None:
        """Forget every hook (used by reset); their queued deliveries are dropped."""
        for hook in list(self.hooks.values()):
            await self.remove(hook.id)
        self.outcomes.clear()
        self._next_id = 1

    def add(self, settings: HookSettings, accepts: Callable[[Change], bool] | None = None) -> Hook:
        hook = Hook(self._next_id, settings, accepts=accepts)
        self._next_id += 1
        self.hooks[hook.id] = hook
        self._start_workers(hook)
        return hook

    def _start_workers(self, hook: Hook) -> None:
        for n in range(hook.settings.concurrency):
            hook.workers.append(
                asyncio.create_task(self._work(hook), name=f"sim-hook-{hook.id}-{n}")
            )

    def reactivate(self, hook_id: int) -> bool:
        """Turn a deactivated hook back on (the Webhooks API's re-enable): a fresh cycle."""
        hook = self.hooks.get(hook_id)
        if hook is None:
            return False
        if hook.active:
            return True
        hook.active = True
        self._reset_cycle(hook)
        # The old delivery loops ended when the hook was deactivated.
        hook.workers = [t for t in hook.workers if not t.done()]
        if not hook.workers:
            self._start_workers(hook)
        hook.wake.set()
        return True

    def deactivate(self, hook_id: int) -> bool:
        """What Procore does to a hook after repeated failures: no more deliveries."""
        hook = self.hooks.get(hook_id)
        if hook is None:
            return False
        hook.active = False
        self._discard_queue(hook)
        hook.wake.set()
        return True

    async def remove(self, hook_id: int) -> bool:
        hook = self.hooks.pop(hook_id, None)
        if hook is None:
            return False
        hook.active = False
        for task in hook.workers:
            task.cancel()
        for task in hook.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return True

    def publish(
        self,
        changes: Sequence[Change],
        ids: EventIds,
        rng: random.Random,
        duplicate_rate: float,
        reorder_rate: float = 0.0,
    ) -> tuple[int, int, int]:
        """Queue one event per change on every hook; returns (events, extra duplicates,
        deliveries held back behind later ones)."""
        events = duplicates = reordered = 0
        for hook in self.hooks.values():
            copies: list[Delivery] = []
            late: list[Delivery] = []
            for change in changes:
                if hook.accepts is not None and not hook.accepts(change):
                    continue
                identity = ids.next(change.timestamp)
                body = render(
                    change, identity, hook.settings.payload_version, hook.settings.shape()
                )
                delivery = Delivery(identity.ulid, orjson.dumps(body))
                if reorder_rate and rng.random() < reorder_rate:
                    late.append(delivery)
                else:
                    self._enqueue(hook, delivery)
                events += 1
                if duplicate_rate and rng.random() < duplicate_rate:
                    copies.append(Delivery(delivery.event_id, delivery.body, duplicate=True))
            rng.shuffle(late)
            for delivery in late:
                self._enqueue(hook, delivery)
                reordered += 1
            for copy in copies:
                self._enqueue(hook, copy)
                duplicates += 1
        self.outcomes["duplicates"] += duplicates
        self.outcomes["reordered"] += reordered
        return events, duplicates, reordered

    def resume(self, hook_id: int) -> bool:
        """End the current pause now (the backoff count is kept)."""
        hook = self.hooks.get(hook_id)
        if hook is None:
            return False
        hook.paused_until = None
        hook.wake.set()
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every active hook has nothing queued or in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(h.active and (h.queue or h.in_flight) for h in self.hooks.values()):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # -- one endpoint's delivery loop ------------------------------------------------------

    def _enqueue(self, hook: Hook, delivery: Delivery) -> None:
        if not hook.active:
            self._count(hook, "discarded")
            hook.record(delivery).outcome = "discarded"
            return
        hook.record(delivery)
        hook.queue.append(delivery)
        hook.wake.set()

    async def _work(self, hook: Hook) -> None:
        loop = asyncio.get_running_loop()
        while hook.active:
            delivery = await self._next(hook, loop)
            if delivery is None:
                continue
            epoch = hook.epoch
            hook.in_flight += 1
            # The POST runs as its own task, shielded: removing a hook (or a reset) cancels
            # the worker, never httpx midway, which could leave pooled connections unclosed.
            post = asyncio.create_task(self._post(hook, delivery))
            self._posts.add(post)
            post.add_done_callback(self._posts.discard)
            started = time.time()
            try:
                outcome, status = await asyncio.shield(post)
            finally:
                hook.in_flight -= 1
            self._count(hook, outcome)
            record = hook.record(delivery)
            record.started_at, record.completed_at = started, time.time()
            record.response_status = status
            record.outcome = "ok" if outcome == "delivered" else "retried"
            record.response_error = None if outcome in ("delivered", "http_error") else outcome
            hook.attempts.append(
                {
                    "event_id": delivery.event_id,
                    "at": time.time(),
                    "outcome": outcome,
                    "status": status,
                    "duplicate": delivery.duplicate,
                }
            )
            if outcome == "delivered":
                if hook.epoch == epoch:
                    hook.failures = 0
                    hook.failing_since = None
                    hook.paused_until = None
            else:
                hook.queue.appendleft(delivery)
                if hook.epoch == epoch:
                    self._pause(hook, loop.time())
            hook.wake.set()

    async def _next(self, hook: Hook, loop: asyncio.AbstractEventLoop) -> Delivery | None:
        scale = hook.settings.time_scale
        while hook.active:
            now = loop.time()
            if hook.failing_since is not None and now - hook.failing_since >= RETENTION_S * scale:
                self._discard_queue(hook)
                self._reset_cycle(hook)
                continue
            wait: float | None = None
            if hook.paused_until is not None and now < hook.paused_until:
                wait = hook.paused_until - now
                if hook.failing_since is not None:
                    wait = min(wait, hook.failing_since + RETENTION_S * scale - now)
            elif hook.queue:
                return hook.queue.popleft()
            hook.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await hook.wake.wait()
        return None

    async def _post(self, hook: Hook, delivery: Delivery) -> tuple[str, int | None]:
        assert self._client is not None, "sender used before open()"
        headers = {"Content-Type": "application/json", "User-Agent": "procore-hooks-simulator"}
        if hook.settings.authorization:
            headers["Authorization"] = hook.settings.authorization
        try:
            answer = await self._client.post(
                hook.settings.destination_url,
                content=delivery.body,
                headers=headers,
                timeout=hook.settings.timeout_s,
            )
        except httpx.TimeoutException:
            return "timeout", None
        except (httpx.HTTPError, httpx.InvalidURL):
            return "connection_error", None
        if 200 <= answer.status_code < 300:
            return "delivered", answer.status_code
        return "http_error", answer.status_code

    def _pause(self, hook: Hook, now: float) -> None:
        hook.failures += 1
        hook.epoch += 1
        if hook.failing_since is None:
            hook.failing_since = now
        limit = hook.settings.deactivate_after_failures
        if limit is not None and hook.failures >= limit:
            hook.active = False
            self._discard_queue(hook)
            hook.wake.set()
            return
        hook.paused_until = now + backoff_s(hook.failures, hook.settings.time_scale)

    def _discard_queue(self, hook: Hook) -> None:
        while hook.queue:
            delivery = hook.queue.popleft()
            self._count(hook, "discarded")
            hook.record(delivery).outcome = "discarded"

    def _reset_cycle(self, hook: Hook) -> None:
        hook.failures = 0
        hook.failing_since = None
        hook.paused_until = None
        hook.epoch += 1

    def _count(self, hook: Hook, outcome: str) -> None:
        hook.outcomes[outcome] += 1
        self.outcomes[outcome] += 1
