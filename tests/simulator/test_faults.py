"""Injected latency, 5xx and dropped connections, global or per company, reproducible."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.simulator.procore import auth, calls, stats


async def test_latency_per_company(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/faults", json={"latency_ms": 300, "company_id": 31})

    started = time.perf_counter()
    slow = await api.get("/rest/v1.0/me", headers=auth(token, 31))
    slow_s = time.perf_counter() - started
    started = time.perf_counter()
    fast = await api.get("/rest/v1.0/me", headers=auth(token, 32))
    fast_s = time.perf_counter() - started

    assert slow.status_code == fast.status_code == 200
    assert slow_s >= 0.3
    assert fast_s < 0.25


async def test_error_rate_one_answers_5xx(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/faults", json={"error_rate": 1.0, "error_status": 502})

    answer = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    login = await api.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sim-client",
            "client_secret": "sim-secret",
        },
    )

    assert answer.status_code == 502
    assert login.status_code == 200  # OAuth is spared unless include_oauth


async def test_faults_can_reach_oauth(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/faults", json={"error_rate": 1.0, "include_oauth": True})

    login = await api.post("/oauth/token", data={"grant_type": "client_credentials"})

    assert login.status_code == 500


async def test_error_fraction_is_reproducible_from_a_seed(
    api: httpx.AsyncClient, token: str
) -> None:
    async def statuses() -> list[int]:
        await api.put("/_sim/faults", json={"error_rate": 0.5, "rng_seed": 42})
        return [
            (await api.get("/rest/v1.0/me", headers=auth(token))).status_code for _ in range(40)
        ]

    first, second = await statuses(), await statuses()

    assert first == second
    assert 8 <= first.count(500) <= 32
    assert set(first) == {200, 500}


async def test_dropped_connection_gets_no_answer(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/faults", json={"drop_rate": 1.0, "company_id": 32})

    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/rest/v1.0/me", headers=auth(token, 32))
    assert (await api.get("/rest/v1.0/me", headers=auth(token, 31))).status_code == 200

    counted = await calls(api, company_id=32)
    assert counted["by_status"] == {"dropped": 1}
    assert (await stats(api))["faults"]["drops"] == 1


async def test_clearing_faults(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/faults", json={"error_rate": 1.0})
    await api.put("/_sim/faults", json={"error_rate": 1.0, "company_id": 32})

    await api.delete("/_sim/faults")

    for company in (31, 32):
        assert (await api.get("/rest/v1.0/me", headers=auth(token, company))).status_code == 200


async def test_most_concurrent_calls_per_company(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/faults", json={"latency_ms": 200})

    await asyncio.gather(*(api.get("/rest/v1.0/me", headers=auth(token, 31)) for _ in range(5)))
    await asyncio.gather(*(api.get("/rest/v1.0/me", headers=auth(token, 32)) for _ in range(2)))

    in_flight = (await stats(api))["max_in_flight"]
    assert in_flight["by_company"]["31"] == 5
    assert in_flight["by_company"]["32"] == 2


async def test_client_that_gives_up_during_latency_is_counted_as_closed(
    api: httpx.AsyncClient, token: str
) -> None:
    await api.put("/_sim/faults", json={"latency_ms": 300})

    with pytest.raises(httpx.ReadTimeout):
        await api.get("/rest/v1.0/me", headers=auth(token), timeout=0.05)
    async with asyncio.timeout(5):
        while (counted := await calls(api, company_id=31))["total"] < 1:
            await asyncio.sleep(0.05)

    assert counted["by_status"] == {"client_closed": 1}
