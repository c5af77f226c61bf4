"""One periodic check keeps the deadlines of many waits of one duration (app.deadlines), and
the webhook's body read is bounded by it as by a timer of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import bodies
from app.deadlines import Deadlines

SCOPE: dict[str, Any] = {"type": "http", "headers": []}


def noting(into: list[Any], value: Any) -> Any:
    """An expiry callback that notes `value` and says it gave something up."""

    def give_up() -> bool:
        into.append(value)
        return True

    return give_up


async def test_a_wait_past_its_deadline_is_given_up_once_and_reported() -> None:
    reported: list[int] = []
    deadlines = Deadlines(0.2, report=reported.append)
    given_up: list[str] = []
    deadlines.start()
    try:
        slow = deadlines.add(noting(given_up, "slow"))
        quick = deadlines.add(noting(given_up, "quick"))
        quick.done = True
        await asyncio.sleep(0.5)
    finally:
        await deadlines.stop()
    assert given_up == ["slow"]
    assert slow.expired
    assert not quick.expired
    assert reported == [1]


async def test_waits_expire_in_order_and_none_before_its_deadline() -> None:
    deadlines = Deadlines(10.0)
    calls: list[int] = []
    first = deadlines.add(noting(calls, 1))
    second = deadlines.add(noting(calls, 2))
    assert deadlines.expire(first.deadline - 0.001) == 0
    assert deadlines.expire(first.deadline) == 1
    assert calls == [1]
    assert not second.expired
    assert deadlines.expire(second.deadline + 1) == 1
    assert calls == [1, 2]


async def test_a_body_trickled_past_the_deadline_is_too_slow() -> None:
    deadlines = Deadlines(0.3)
    deadlines.start()

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(bodies.BodyTooSlow):
            await bodies.read_bounded(
                trickle, SCOPE, limit=1 << 20, within=0.3, deadlines=deadlines
            )
        waited = asyncio.get_running_loop().time() - started
    finally:
        await deadlines.stop()
    assert 0.3 <= waited < 1.0


async def test_a_whole_body_is_read_and_an_outside_cancel_is_not_taken_for_slowness() -> None:
    deadlines = Deadlines(5.0)
    deadlines.start()

    async def whole() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"a": 1}', "more_body": False}

    async def never() -> dict[str, Any]:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    try:
        assert (
            await bodies.read_bounded(whole, SCOPE, limit=1024, within=5.0, deadlines=deadlines)
            == b'{"a": 1}'
        )
        reading = asyncio.create_task(
            bodies.read_bounded(never, SCOPE, limit=1024, within=5.0, deadlines=deadlines)
        )
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    finally:
        await deadlines.stop()
