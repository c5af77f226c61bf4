"""The shared rate budget: pace Procore calls across every worker process through Redis.

Procore counts calls per credential (and per company for a service account) and says where
we stand on every answer (`X-Rate-Limit-Limit/Remaining/Reset`, FACTS.md §5). Each budget key
holds what the newest answer said, minus the calls in flight since: a call takes one unit
before it is sent (`take`), and its answer refreshes the count (`settle`). When nothing is
left, callers wait for the reset rather than collecting 429s.

Before any answer (or after a window reset, until the next answer) a budget grants only what
it can justify: a small initial burst, then the last known limit; callers beyond it poll
briefly for the answers in flight to tell the real figures.

Round trips are shared: the takes waiting in one process for one key go to Redis together
(one script call grants up to all of them), and settles are sent in batches in the
background, so pacing costs about two Redis calls per burst of calls, not two per call.

Redis only coordinates: if it is down or flushed, calls go unpaced (Procore's 429s still stop
us) and nothing fails.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.logs import get_logger
from app.procore.answers import RateHeaders

log = get_logger(__name__)

# A provisional window (no answer yet) lasts this long before granting again.
PROVISIONAL_WINDOW_SECONDS = 10.0
# While a provisional budget is spent, callers ask again this often for the answers' news.
PROVISIONAL_POLL_SECONDS = 0.05
# A call still unanswered after this long no longer counts as in flight (its process died).
IN_FLIGHT_EXPIRY_SECONDS = 120.0
KEY_TTL_MS = 2 * 3600 * 1000
# After a Redis failure, pacing is off for this long instead of paying a timeout per call.
REDIS_DOWN_BACKOFF_SECONDS = 5.0

# KEYS: budget hash, in-flight zset. ARGV: now, initial burst, in-flight expiry, provisional
# window, key ttl (ms), provisional poll, n, then n call ids. Returns {granted, wait}.
_TAKE = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
local inflight = redis.call('ZCARD', KEYS[2])
local b = redis.call('HMGET', KEYS[1], 'rem', 'reset', 'limit', 'prov')
local rem, reset, limit, prov = tonumber(b[1]), tonumber(b[2]), tonumber(b[3]), b[4]
if rem == nil or reset == nil or now >= reset then
  rem = (limit or tonumber(ARGV[2])) - inflight
  reset = now + tonumber(ARGV[4])
  prov = '1'
  redis.call('HSET', KEYS[1], 'rem', rem, 'reset', reset, 'prov', 1)
end
local granted = math.max(0, math.min(n, rem))
if granted > 0 then
  redis.call('HSET', KEYS[1], 'rem', rem - granted)
  for i = 1, granted do
    redis.call('ZADD', KEYS[2], now, ARGV[7 + i])
  end
  inflight = inflight + granted
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if granted == n then
  return {granted, '0'}
end
-- The callers not granted wait for the reset...
local wait = math.max(reset - now, 0.01)
if prov == '1' and inflight > 0 then
  -- ...unless it is provisional: the answers in flight will tell the real budget soon.
  wait = math.min(wait, tonumber(ARGV[6]))
end
return {granted, tostring(wait)}
"""

# KEYS: budget hash, in-flight zset. ARGV: now, limit, remaining, reset (each '' when the
# answers carried none), key ttl (ms), n, then n call ids.
_SETTLE = """
local n = tonumber(ARGV[6])
if n > 0 then
  redis.call('ZREM', KEYS[2], unpack(ARGV, 7, 6 + n))
end
if ARGV[3] == '' or ARGV[4] == '' then
  return 0
end
local now = tonumber(ARGV[1])
local reset = tonumber(ARGV[4])
if reset <= now then
  return 0
end
local rem = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[2])
local b = redis.call('HMGET', KEYS[1], 'rem', 'reset', 'prov')
local cur_rem, cur_reset = tonumber(b[1]), tonumber(b[2])
if cur_rem == nil or cur_reset == nil or b[3] == '1' or reset > cur_reset or rem < cur_rem then
  redis.call('HSET', KEYS[1], 'rem', rem, 'reset', reset, 'prov', 0)
  if ARGV[2] ~= '' then
    redis.call('HSET', KEYS[1], 'limit', ARGV[2])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Ticket:
    """One unit taken from a budget; settle it with the answer's headers (or none)."""

    key: str
    call_id: str


@dataclass(slots=True)
class _Key:
    takers: list[asyncio.Future[tuple[Ticket | None, float]]] = field(default_factory=list)
    taking: bool = False
    settles: list[tuple[str, RateHeaders | None]] = field(default_factory=list)
    settling: bool = False


def newest(headers: list[RateHeaders]) -> RateHeaders | None:
    """The answer that says the most: the latest window, and in it the fewest remaining."""
    told = [h for h in headers if h.remaining is not None and h.reset is not None]
    if not told:
        return None
    return max(told, key=lambda h: (h.reset or 0.0, -(h.remaining or 0)))


class RateBudget:
    def __init__(self, redis: Redis, *, prefix: str, initial_burst: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._initial_burst = initial_burst
        self._take = redis.register_script(_TAKE)
        self._settle = redis.register_script(_SETTLE)
        self._down_until = 0.0
        self._keys: dict[str, _Key] = {}
        self._background: set[asyncio.Task[None]] = set()

    def key(self, credential_id: int, company_id: int | None) -> str:
        scope = f"{credential_id}" if company_id is None else f"{credential_id}:{company_id}"
        return f"{self._prefix}:rate:{scope}"

    async def take(self, key: str) -> tuple[Ticket | None, float]:
        """Take one call from the budget: (ticket, 0) when granted, (None, wait) when not."""
        if self._paused():
            return Ticket(key, uuid.uuid4().hex), 0.0
        state = self._keys.setdefault(key, _Key())
        taker: asyncio.Future[tuple[Ticket | None, float]] = (
            asyncio.get_running_loop().create_future()
        )
        state.takers.append(taker)
        if not state.taking:
            state.taking = True
            self._spawn(self._take_rounds(key, state))
        return await taker

    def settle(self, ticket: Ticket, headers: RateHeaders | None) -> None:
        """Return the call's unit with what Procore said about the budget (if it answered).

        Sent to Redis in the background, batched with the other answers of the moment."""
        if self._paused():
            return
        state = self._keys.setdefault(ticket.key, _Key())
        state.settles.append((ticket.call_id, headers))
        if not state.settling:
            state.settling = True
            self._spawn(self._settle_rounds(ticket.key, state))

    async def close(self) -> None:
        """Send the settles still pending (shutdown)."""
        if self._background:
            await asyncio.wait(self._background, timeout=2)

    async def _take_rounds(self, key: str, state: _Key) -> None:
        takers: list[asyncio.Future[tuple[Ticket | None, float]]] = []
        try:
            while takers := [t for t in state.takers if not t.done()]:
                state.takers.clear()
                ids = [uuid.uuid4().hex for _ in takers]
                granted, wait = await self._take_many(key, ids)
                for n, (taker, call_id) in enumerate(zip(takers, ids, strict=True)):
                    if n >= granted:
                        if not taker.done():
                            taker.set_result((None, wait))
                    elif taker.done():  # its caller gave up: hand the unit back
                        self.settle(Ticket(key, call_id), None)
                    else:
                        taker.set_result((Ticket(key, call_id), 0.0))
        finally:
            state.taking = False
            # Only if this round died (shutdown): nobody is left waiting forever.
            for taker in [*takers, *state.takers]:
                if not taker.done():
                    taker.set_result((Ticket(key, uuid.uuid4().hex), 0.0))
            state.takers.clear()

    async def _take_many(self, key: str, ids: list[str]) -> tuple[int, float]:
        if self._paused():
            return len(ids), 0.0
        try:
            granted, wait = await self._take(
                keys=[key, f"{key}:inflight"],
                args=[
                    time.time(),
                    self._initial_burst,
                    IN_FLIGHT_EXPIRY_SECONDS,
                    PROVISIONAL_WINDOW_SECONDS,
                    KEY_TTL_MS,
                    PROVISIONAL_POLL_SECONDS,
                    len(ids),
                    *ids,
                ],
            )
        except (TimeoutError, RedisError, OSError) as exc:
            self._pause(exc)
            return len(ids), 0.0
        return int(granted), float(wait)

    async def _settle_rounds(self, key: str, state: _Key) -> None:
        try:
            while state.settles:
                batch, state.settles = state.settles, []
                told = newest([h for _, h in batch if h is not None])
                await self._settle_many(key, [call_id for call_id, _ in batch], told)
        finally:
            state.settling = False
            state.settles.clear()

    async def _settle_many(self, key: str, ids: list[str], headers: RateHeaders | None) -> None:
        if self._paused():
            return
        h = headers or RateHeaders(None, None, None)
        try:
            await self._settle(
                keys=[key, f"{key}:inflight"],
                args=[
                    time.time(),
                    "" if h.limit is None else h.limit,
                    "" if h.remaining is None else h.remaining,
                    "" if h.reset is None else h.reset,
                    KEY_TTL_MS,
                    len(ids),
                    *ids,
                ],
            )
        except (TimeoutError, RedisError, OSError) as exc:
            self._pause(exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _paused(self) -> bool:
        return time.monotonic() < self._down_until

    def _pause(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF_SECONDS
        log.warning("rate_budget.unavailable", error=str(exc) or type(exc).__name__)
