"""Procore's delivery behaviour: pause, backoff, discard, duplicates (FACTS.md §2)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import httpx

from tests.simulator.procore import stats
from tests.simulator.receiver import Receiver

RFI_UPDATE = {"company_id": 31, "project_id": 900, "resource_name": "RFIs", "resource_id": 5150}
# Scheduling noise allowance when comparing measured gaps with backoff delays.
SLACK_S = 0.005


async def add_hook(api: httpx.AsyncClient, url: str, **settings: Any) -> int:
    answer = await api.post("/_sim/hooks", json={"destination_url": url, **settings})
    assert answer.status_code == 201, answer.text
    hook_id: int = answer.json()["id"]
    return hook_id


async def emit(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    answer = await api.post("/_sim/events", json={**RFI_UPDATE, **overrides})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def hook_view(api: httpx.AsyncClient, hook_id: int) -> dict[str, Any]:
    hooks = (await api.get("/_sim/hooks")).json()
    view: dict[str, Any] = next(h for h in hooks if h["id"] == hook_id)
    return view


async def until(api: httpx.AsyncClient, hook_id: int, outcome: str, count: int) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while (view := await hook_view(api, hook_id))["outcomes"].get(outcome, 0) < count:
            await asyncio.sleep(0.01)
    return view


async def drained(api: httpx.AsyncClient) -> bool:
    answer = await api.post("/_sim/drain", json={"timeout_s": 5})
    return bool(answer.json()["drained"])


async def test_one_event_per_post(api: httpx.AsyncClient, receiver: Receiver) -> None:
    await add_hook(api, receiver.url)

    emitted = await emit(api, count=3)

    assert emitted["events"] == 3
    assert await drained(api)
    bodies = [r.json() for r in receiver.received]
    assert len(bodies) == 3
    assert all(isinstance(b, dict) and b["resource_id"] == 5150 for b in bodies)
    assert (await stats(api))["deliveries"] == {"delivered": 3, "duplicates": 0, "reordered": 0}


async def test_failure_pauses_the_endpoint_and_backs_off(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    scale = 0.04  # backoff 40 ms, 80 ms, 160 ms, …
    await add_hook(api, receiver.url, time_scale=scale)
    receiver.script.extend([500, 503, 404])

    await emit(api)
    await emit(api)
    assert await drained(api)

    got = receiver.received
    ids = [r.json()["ulid"] for r in got]
    first, second = ids[0], ids[-1]
    # The failing event blocks the one behind it: nothing else is sent while paused.
    assert ids == [first, first, first, first, second]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(got[:4])]
    for gap, backoff in zip(gaps, (1, 2, 4), strict=True):
        assert gap >= backoff * scale - SLACK_S
    assert gaps[2] < 8 * scale

    # A success resets the cycle: the next failure waits the first step (not the 5th) again.
    receiver.script.append(500)
    await emit(api)
    assert await drained(api)
    retry_gap = got[-1].at - got[-2].at
    assert scale - SLACK_S <= retry_gap < 8 * scale
    assert (await stats(api))["deliveries"]["http_error"] == 4


async def test_attempt_log(api: httpx.AsyncClient, receiver: Receiver) -> None:
    hook_id = await add_hook(api, receiver.url, time_scale=0.001)
    receiver.script.append(502)

    await emit(api)
    assert await drained(api)

    log = (await api.get(f"/_sim/hooks/{hook_id}/deliveries")).json()
    assert [(a["outcome"], a["status"]) for a in log] == [("http_error", 502), ("delivered", 200)]
    assert log[0]["event_id"] == log[1]["event_id"]


async def test_timeout_counts_as_failure(api: httpx.AsyncClient, receiver: Receiver) -> None:
    hook_id = await add_hook(api, receiver.url, timeout_s=0.1, time_scale=0.001)
    receiver.delay_s = 0.4

    await emit(api)
    await receiver.wait_for(1)
    receiver.delay_s = 0.0
    view = await until(api, hook_id, "delivered", 1)

    assert view["outcomes"]["timeout"] >= 1


async def test_connection_error_counts_as_failure(api: httpx.AsyncClient) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    hook_id = await add_hook(api, f"http://127.0.0.1:{port}/hooks", time_scale=0.001)

    await emit(api)
    view = await until(api, hook_id, "connection_error", 2)

    assert view["queued"] + view["in_flight"] == 1  # the one event, held by the pause
    assert view["failures"] >= 1


async def test_events_are_discarded_after_the_retention_window(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    scale = 2e-5  # 12 h of failure in 0.86 s
    hook_id = await add_hook(api, receiver.url, time_scale=scale)
    receiver.status = 500

    await emit(api, count=3)
    view = await until(api, hook_id, "discarded", 3)
    assert view["queued"] == 0
    assert "delivered" not in view["outcomes"]
    failed_ulids = {r.json()["ulid"] for r in receiver.received}
    assert len(failed_ulids) == 1  # only the head of the queue was ever tried

    receiver.status = 200
    await emit(api)
    await until(api, hook_id, "delivered", 1)
    assert receiver.received[-1].json()["ulid"] not in failed_ulids


async def test_hook_can_be_deactivated_after_failures(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook_id = await add_hook(api, receiver.url, time_scale=0.001, deactivate_after_failures=2)
    receiver.status = 500

    await emit(api, count=2)
    view = await until(api, hook_id, "discarded", 2)

    assert view["active"] is False
    assert view["outcomes"]["http_error"] == 2


async def test_resume_ends_a_pause(api: httpx.AsyncClient, receiver: Receiver) -> None:
    hook_id = await add_hook(api, receiver.url)  # real time: the first pause is 1 s
    receiver.script.append(500)

    await emit(api)
    view = await until(api, hook_id, "http_error", 1)
    assert view["paused_for_s"] is not None

    await api.post(f"/_sim/hooks/{hook_id}/resume")
    await receiver.wait_for(2, timeout_s=0.5)


async def test_every_event_can_be_duplicated(api: httpx.AsyncClient, receiver: Receiver) -> None:
    await add_hook(api, receiver.url)

    emitted = await emit(api, count=3, duplicate_rate=1.0)
    assert await drained(api)

    ulids = [r.json()["ulid"] for r in receiver.received]
    assert emitted["duplicates"] == 3
    assert len(ulids) == 6
    assert all(ulids.count(u) == 2 for u in ulids)
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 3  # a duplicate is byte-for-byte the same event


async def test_duplicate_share_is_exactly_what_was_reported(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await add_hook(api, receiver.url)

    emitted = await emit(api, count=50, duplicate_rate=0.3)
    assert await drained(api)

    assert 0 < emitted["duplicates"] < 50
    assert len(receiver.received) == 50 + emitted["duplicates"]
    assert (await stats(api))["deliveries"]["duplicates"] == emitted["duplicates"]


async def test_reordered_deliveries_arrive_after_later_events(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    await add_hook(api, receiver.url)

    emitted = await emit(api, count=40, reorder_rate=0.5)
    assert await drained(api)

    assert 0 < emitted["reordered"] < 40
    assert (await stats(api))["deliveries"]["reordered"] == emitted["reordered"]
    # Every update of the resource arrives exactly once...
    ulids = [r.json()["ulid"] for r in receiver.received]
    assert len(ulids) == len(set(ulids)) == 40
    # ...the ones not held back in the order they happened, then the held-back ones: so
    # (ULIDs grow with time) some later updates overtook earlier ones.
    inversions = sum(1 for a, b in itertools.pairwise(ulids) if a > b)
    assert inversions >= 1
    on_time = ulids[: 40 - emitted["reordered"]]
    assert on_time == sorted(on_time)
    assert max(on_time) > min(ulids[40 - emitted["reordered"] :])


async def test_parallel_deliveries(api: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.delay_s = 0.05
    await add_hook(api, receiver.url, concurrency=8)

    started = asyncio.get_running_loop().time()
    await emit(api, count=16)
    assert await drained(api)

    assert len(receiver.received) == 16
    assert asyncio.get_running_loop().time() - started < 16 * 0.05


async def test_removed_hook_gets_nothing(api: httpx.AsyncClient, receiver: Receiver) -> None:
    hook_id = await add_hook(api, receiver.url)
    assert (await api.delete(f"/_sim/hooks/{hook_id}")).status_code == 200

    emitted = await emit(api)

    assert emitted["events"] == 0
    assert receiver.received == []


async def test_hook_needs_an_http_url(api: httpx.AsyncClient) -> None:
    answer = await api.post("/_sim/hooks", json={"destination_url": "ftp://example.com/x"})

    assert answer.status_code == 422
    assert "destination_url" in answer.json()["errors"][0]
