"""The Procore client and the job around it, with Procore mocked at the HTTP layer (respx).

respx answers at httpx's client layer, so these runtimes' Procore clients go through httpx
rather than straight over the wire (`over_httpx`); the wire's own path is tested in
test_transport.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text

from app.events.service import process_batch
from app.procore.answers import OutcomeKind
from app.procore.calls import CallRecord
from app.procore.client import ProcoreClient
from app.runtime import USER_AGENT, Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, store_events

API = "https://api.procore.test"
LOGIN = "https://login.procore.test"
RFI = f"{API}/rest/v1.0/projects/900/rfis/5150"
BODY = {"id": 5150, "subject": "Slab edge", "updated_at": "2026-03-02T10:15:30.123Z"}


def over_httpx(runtime: Runtime) -> Runtime:
    """The runtime with its Procore client calling through httpx, where respx answers."""
    procore = runtime.procore
    runtime.procore = ProcoreClient(
        http=runtime.http, settings=runtime.settings, tokens=procore.tokens, budget=procore.budget
    )
    return runtime


@pytest.fixture
async def mocked(
    db: Runtime, pipeline_settings: Callable[..., Settings], redis: Any
) -> AsyncIterator[tuple[Runtime, respx.MockRouter]]:
    runtime = over_httpx(
        open_runtime(pipeline_settings(procore_api_base=API, procore_login_base=LOGIN), name="t")
    )
    minted = iter(range(1, 1000))
    with respx.mock(assert_all_mocked=True, assert_all_called=False, using="httpx") as router:
        router.post(f"{LOGIN}/oauth/token").mock(
            side_effect=lambda request: httpx.Response(
                200, json={"access_token": f"token-{next(minted)}", "expires_in": 5400}
            )
        )
        yield runtime, router
    await runtime.close()


async def event(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(
                text(
                    "SELECT status, attempts, last_status, last_error, credential_id,"
                    " extract(epoch FROM next_attempt_at - now()) AS wait FROM events"
                )
            )
        ).one()


async def audit(runtime: Runtime) -> list[Any]:
    async with runtime.sessions() as session:
        return list(
            (
                await session.execute(
                    text(
                        "SELECT purpose, method, path, status, company_id, project_id, event_id,"
                        " latency_ms, error FROM procore_calls ORDER BY at, id"
                    )
                )
            ).all()
        )


async def test_every_call_carries_company_user_agent_and_token(
    mocked: tuple[Runtime, respx.MockRouter],
) -> None:
    runtime, router = mocked
    route = router.get(RFI).respond(200, json=BODY)
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, [event_id]) == 1
    request = route.calls.last.request
    assert request.headers["Procore-Company-Id"] == "31"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Authorization"] == "Bearer token-1"
    calls = await audit(runtime)
    assert [(c.purpose, c.method, c.status) for c in calls] == [
        ("token", "POST", 200),
        ("fetch", "GET", 200),
    ]
    fetch = calls[1]
    assert (fetch.path, fetch.company_id, fetch.project_id, fetch.event_id) == (
        "/rest/v1.0/projects/900/rfis/5150",
        31,
        900,
        event_id,
    )
    row = await event(runtime)
    assert (row.status, row.last_status) == ("done", 200)
    assert row.credential_id is not None


async def test_a_401_renews_the_token_once_and_retries(
    mocked: tuple[Runtime, respx.MockRouter],
) -> None:
    runtime, router = mocked
    route = router.get(RFI).mock(
        side_effect=[
            httpx.Response(401, json={"errors": "The access token expired"}),
            httpx.Response(200, json=BODY),
        ]
    )
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, [event_id]) == 1
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert [(c.purpose, c.status) for c in await audit(runtime)] == [
        ("token", 200),
        ("fetch", 401),
        ("token", 200),
        ("fetch", 200),
    ]


async def test_a_401_after_a_fresh_token_is_a_signal_not_a_loop(
    mocked: tuple[Runtime, respx.MockRouter],
) -> None:
    runtime, router = mocked
    router.get(RFI).respond(401, json={"errors": "The access token is invalid"})
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    await process_batch(runtime, [event_id])
    row = await event(runtime)
    assert (row.status, row.attempts, row.last_status) == ("retrying", 1, 401)
    assert [c.status for c in await audit(runtime)] == [200, 401, 200, 401]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, {"errors": {"subject": ["can't be blank"]}}),
        (409, {"error": {"code": "conflict", "message": "Version mismatch", "details": []}}),
        (400, {"code": 400, "message": "Bad request", "reason": "bad param", "error": "x"}),
    ],
)
async def test_our_request_being_wrong_is_dead_without_retry(
    mocked: tuple[Runtime, respx.MockRouter], status: int, body: dict[str, Any]
) -> None:
    runtime, router = mocked
    route = router.get(RFI).respond(status, json=body)
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, [event_id]) == 1
    row = await event(runtime)
    assert (row.status, row.attempts, row.last_status) == ("dead", 0, status)
    assert row.last_error
    assert route.call_count == 1


async def test_a_timeout_is_transient(mocked: tuple[Runtime, respx.MockRouter]) -> None:
    runtime, router = mocked
    router.get(RFI).mock(side_effect=httpx.ReadTimeout("slow"))
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, [event_id]) == 0
    row = await event(runtime)
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "retrying",
        1,
        None,
        "timeout",
    )
    [_, fetch] = await audit(runtime)
    assert (fetch.status, fetch.error) == (None, "timeout")


@pytest.mark.parametrize("told", ["retry-after", "reset"])
@pytest.mark.parametrize("status", [429, 503])
async def test_rate_limits_wait_without_spending_attempts(
    mocked: tuple[Runtime, respx.MockRouter], status: int, told: str
) -> None:
    runtime, router = mocked
    headers = (
        {"Retry-After": "60"}
        if told == "retry-after"
        else {"X-Rate-Limit-Reset": str(int(time.time()) + 60), "X-Rate-Limit-Remaining": "0"}
    )
    if status == 503 and "Retry-After" not in headers:
        headers = {**headers, "Retry-After": "60"}
    router.get(RFI).respond(status, headers=headers, text="slow down")
    [event_id] = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, [event_id]) == 0
    row = await event(runtime)
    assert (row.status, row.attempts, row.last_status) == ("retrying", 0, status)
    assert 55 < row.wait < 62


async def test_the_shared_budget_defers_calls_once_procore_says_none_are_left(
    mocked: tuple[Runtime, respx.MockRouter],
) -> None:
    runtime, router = mocked
    reset = int(time.time()) + 30
    route = router.get(url__startswith=f"{API}/rest/v1.0/projects/900/rfis/").respond(
        200,
        json=BODY,
        headers={
            "X-Rate-Limit-Limit": "25",
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(reset),
        },
    )
    first = await store_events(runtime, [Spec("RFIs", 5150)])
    assert await process_batch(runtime, first) == 1
    second = await store_events(runtime, [Spec("RFIs", 5151)])
    assert await process_batch(runtime, second) == 0
    assert route.call_count == 1  # the second call was never sent
    async with runtime.sessions() as session:
        waiting = (
            await session.execute(
                text(
                    "SELECT status, attempts, extract(epoch FROM next_attempt_at - now())"
                    " FROM events WHERE id = :id"
                ),
                {"id": second[0]},
            )
        ).one()
    assert waiting[0] == "retrying"
    assert waiting[1] == 0
    assert 25 < waiting[2] < 32


async def test_redis_down_means_no_pacing_not_failure(
    db: Runtime, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = over_httpx(
        open_runtime(
            pipeline_settings(
                procore_api_base=API, procore_login_base=LOGIN, redis_url="redis://127.0.0.1:1/0"
            ),
            name="t",
        )
    )
    try:
        with respx.mock(assert_all_called=False, using="httpx") as router:
            router.post(f"{LOGIN}/oauth/token").respond(
                200, json={"access_token": "t", "expires_in": 5400}
            )
            route = router.get(url__startswith=f"{API}/rest/").respond(200, json=BODY)
            ids = await store_events(runtime, [Spec("RFIs", 5150), Spec("RFIs", 5151)])
            assert await process_batch(runtime, ids) == 2
            assert route.call_count == 2
    finally:
        await runtime.close()


async def test_concurrent_identical_fetches_share_one_call(
    mocked: tuple[Runtime, respx.MockRouter],
) -> None:
    runtime, router = mocked
    route = router.get(RFI).respond(200, json=BODY)
    credential, _ = await runtime.procore.tokens.credential_for(31)
    assert credential is not None
    calls: list[CallRecord] = []
    path = "/rest/v1.0/projects/900/rfis/5150"
    client = runtime.procore
    answers = await asyncio.gather(
        *(
            client.get(path, credential=credential, company_id=31, calls=calls, shared=True)
            for _ in range(3)
        )
    )
    assert [a.outcome.kind for a in answers] == [OutcomeKind.OK] * 3
    assert route.call_count == 1
    assert len(calls) == 1
    # Once sent, a newcomer does not take that answer: it may predate what it knows.
    again = await runtime.procore.get(
        path, credential=credential, company_id=31, calls=calls, shared=True
    )
    assert again.outcome.kind is OutcomeKind.OK
    assert route.call_count == 2
