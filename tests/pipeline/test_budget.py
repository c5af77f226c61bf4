"""The shared rate budget in Redis, as several processes see it."""

from __future__ import annotations

import asyncio
import time
import uuid

from arq.connections import ArqRedis

from app.procore.answers import RateHeaders
from app.procore.budget import PROVISIONAL_POLL_SECONDS, RateBudget, Ticket
from tests.conftest import RUN_ID


def budgets(redis: ArqRedis, processes: int = 3) -> list[RateBudget]:
    return [
        RateBudget(redis, prefix=f"{RUN_ID}:budget-test", initial_burst=5) for _ in range(processes)
    ]


async def take_all(budget: RateBudget, key: str, n: int) -> list[tuple[Ticket | None, float]]:
    return await asyncio.gather(*(budget.take(key) for _ in range(n)))


async def test_before_any_answer_only_the_initial_burst_goes(redis: ArqRedis) -> None:
    processes = budgets(redis)
    key = processes[0].key(7, 31) + uuid.uuid4().hex
    results = [r for p in processes for r in await take_all(p, key, 4)]
    granted = [t for t, _ in results if t is not None]
    assert len(granted) == 5
    # The others poll briefly: the answers in flight will tell the real budget.
    assert all(0 < wait <= PROVISIONAL_POLL_SECONDS for t, wait in results if t is None), results


async def test_answers_set_the_budget_for_every_process(redis: ArqRedis) -> None:
    a, b, c = budgets(redis)
    key = a.key(7, 31) + uuid.uuid4().hex
    [(ticket, _)] = await take_all(a, key, 1)
    assert ticket is not None
    reset = time.time() + 30
    a.settle(ticket, RateHeaders(limit=25, remaining=12, reset=reset))
    await a.close()
    results = [r for p in (a, b, c) for r in await take_all(p, key, 6)]
    assert sum(1 for t, _ in results if t is not None) == 12
    waits = [w for t, w in results if t is None]
    assert len(waits) == 6
    assert all(25 < w <= 30 for w in waits)  # until Procore's reset, not a poll


async def test_a_stale_answer_never_raises_the_budget(redis: ArqRedis) -> None:
    (a,) = budgets(redis, 1)
    key = a.key(7, None) + uuid.uuid4().hex
    tickets = [t for t, _ in await take_all(a, key, 2)]
    reset = time.time() + 30
    assert tickets[0] is not None
    assert tickets[1] is not None
    a.settle(tickets[0], RateHeaders(25, 3, reset))
    await a.close()
    a.settle(tickets[1], RateHeaders(25, 9, reset))  # answered earlier, arrived later
    await a.close()
    granted = [t for t, _ in await take_all(a, key, 10) if t is not None]
    assert len(granted) == 2  # 3 left minus the call still in flight then


async def test_a_new_window_restores_the_last_known_limit(redis: ArqRedis) -> None:
    (a,) = budgets(redis, 1)
    key = a.key(7, 31) + uuid.uuid4().hex
    [(ticket, _)] = await take_all(a, key, 1)
    assert ticket is not None
    a.settle(ticket, RateHeaders(limit=8, remaining=0, reset=time.time() + 0.3))
    await a.close()
    [(none, wait)] = await take_all(a, key, 1)
    assert none is None
    await asyncio.sleep(wait + 0.05)
    granted = [t for t, _ in await take_all(a, key, 20) if t is not None]
    assert len(granted) == 8
