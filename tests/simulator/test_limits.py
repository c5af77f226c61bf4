"""Rate limits (both windows), 429 and 503 load shedding (FACTS.md §5)."""

from __future__ import annotations

import time

import httpx

from tests.simulator.procore import auth, client_credentials_token, stats, user_tokens

HOURLY_TEXT = (
    "You have surpassed the max number of requests for an hour. "
    "Please wait until your limit resets."
)


def limit_headers(answer: httpx.Response) -> tuple[int, int, int]:
    h = answer.headers
    return (
        int(h["x-rate-limit-limit"]),
        int(h["x-rate-limit-remaining"]),
        int(h["x-rate-limit-reset"]),
    )


async def test_default_limits_show_the_spike_window(api: httpx.AsyncClient) -> None:
    await api.post("/_sim/reset")  # the fixture raised the limits; back to the defaults
    token = await client_credentials_token(api)
    answer = await api.get("/rest/v1.0/me", headers=auth(token))

    limit, remaining, reset = limit_headers(answer)
    assert (limit, remaining) == (25, 24)  # 25 per 10 s is nearer than 3,600 per hour
    assert 0 < reset - time.time() <= 11


async def test_spike_window_429_and_reset(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/rate_limit", json={"hourly": 100, "spike": 3, "spike_window_s": 10})

    answers = [await api.get("/rest/v1.0/me", headers=auth(token)) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [limit_headers(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    refused = answers[3]
    assert refused.text == HOURLY_TEXT
    assert refused.headers["content-type"].startswith("text/plain")
    assert "retry-after" not in refused.headers
    assert 0 < limit_headers(refused)[2] - time.time() <= 11

    await api.post("/_sim/clock", json={"advance_s": 10.5})
    again = await api.get("/rest/v1.0/me", headers=auth(token))
    assert again.status_code == 200
    assert limit_headers(again)[:2] == (3, 2)
    assert (await stats(api))["rate_limited"] == 1


async def test_hourly_window_429_with_retry_after(api: httpx.AsyncClient, token: str) -> None:
    await api.put(
        "/_sim/rate_limit",
        json={"hourly": 2, "spike": 50, "hourly_window_s": 3600, "retry_after_on_429": True},
    )

    answers = [await api.get("/rest/v1.0/me", headers=auth(token)) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert limit_headers(answers[0])[:2] == (2, 1)  # the hourly window is nearer now
    reset = limit_headers(answers[2])[2]
    assert 3590 < reset - time.time() <= 3601
    assert 3590 < int(answers[2].headers["retry-after"]) <= 3601


async def test_service_account_calls_count_per_company(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/rate_limit", json={"hourly": 100, "spike": 2})

    company_31 = [await api.get("/rest/v1.0/me", headers=auth(token, 31)) for _ in range(3)]
    company_32 = await api.get("/rest/v1.0/me", headers=auth(token, 32))

    assert [a.status_code for a in company_31] == [200, 200, 429]
    assert company_32.status_code == 200


async def test_user_token_calls_count_per_client(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/rate_limit", json={"hourly": 100, "spike": 2})
    token = (await user_tokens(api))["access_token"]

    answers = [
        await api.get("/rest/v1.0/me", headers=auth(token, company)) for company in (31, 32, 33)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]


async def test_load_shedding_503_with_retry_after(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/load_shedding", json={"active": True, "retry_after_s": 7})

    shed = await api.get("/rest/v1.0/me", headers=auth(token))
    oauth = await api.get("/oauth/token/info", headers={"Authorization": f"Bearer {token}"})

    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "7"
    assert oauth.status_code == 200  # login is not shed

    await api.put("/_sim/load_shedding", json={"active": False})
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200
    assert (await stats(api))["faults"]["shed"] == 1


async def test_load_shedding_per_company(api: httpx.AsyncClient, token: str) -> None:
    await api.put(
        "/_sim/load_shedding", json={"active": True, "retry_after_s": 3, "company_id": 32}
    )

    assert (await api.get("/rest/v1.0/me", headers=auth(token, 32))).status_code == 503
    assert (await api.get("/rest/v1.0/me", headers=auth(token, 31))).status_code == 200
