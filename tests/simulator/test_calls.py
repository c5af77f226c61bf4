"""Exact call counters: per company, per project, per path, per status."""

from __future__ import annotations

import asyncio

import httpx

from tests.simulator.procore import auth, calls, stats


async def test_counts_are_exact(api: httpx.AsyncClient, token: str) -> None:
    for _ in range(3):
        await api.get("/rest/v1.0/me", headers=auth(token))
    await api.get("/rest/v1.0/projects/902/rfis/5180", headers=auth(token))
    for _ in range(2):
        await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    await api.get("/rest/v1.0/projects/900/rfis/9999", headers=auth(token))
    await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token, company_id=None))
    await api.get("/rest/v1.0/projects?company_id=33", headers=auth(token, 33))

    everything = await calls(api)
    company_31 = await calls(api, company_id=31)
    project_900 = await calls(api, project_id=900)
    company_33 = await calls(api, company_id=33)

    # The token request made by the fixture is a call too (no company).
    assert everything["total"] == 10
    assert everything["by_status"] == {"200": 6, "400": 1, "403": 2, "404": 1}
    assert company_31 == {
        "total": 7,
        "by_status": {"200": 5, "403": 1, "404": 1},
        "by_path": {
            "/rest/v1.0/me": 3,
            "/rest/v1.0/projects/900/rfis/5150": 2,
            "/rest/v1.0/projects/900/rfis/9999": 1,
            "/rest/v1.0/projects/902/rfis/5180": 1,
        },
        "by_route": {"/rest/v1.0/me": 3, "/rest/v1.0/projects/{id}/rfis/{id}": 4},
    }
    # The three answered calls about project 900, and the one refused for want of a header.
    assert project_900["total"] == 4
    assert company_33["by_status"] == {"403": 1}
    assert (await calls(api, company_id=31, project_id=902))["total"] == 1


async def test_concurrent_calls_are_all_counted(api: httpx.AsyncClient, token: str) -> None:
    await api.delete("/_sim/calls")

    answers = await asyncio.gather(
        *(api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token)) for _ in range(200))
    )

    assert all(a.status_code == 200 for a in answers)
    assert (await calls(api, company_id=31))["by_status"] == {"200": 200}


async def test_rate_limited_and_faulted_calls_are_counted(
    api: httpx.AsyncClient, token: str
) -> None:
    await api.put("/_sim/rate_limit", json={"spike": 1})
    await api.get("/rest/v1.0/me", headers=auth(token))
    await api.get("/rest/v1.0/me", headers=auth(token))
    await api.put("/_sim/faults", json={"error_rate": 1.0, "company_id": 31})
    await api.get("/rest/v1.0/me", headers=auth(token))

    assert (await calls(api, company_id=31))["by_status"] == {"200": 1, "429": 1, "500": 1}
    assert (await stats(api))["rate_limited"] == 1


async def test_clearing_calls_and_reset(api: httpx.AsyncClient, token: str) -> None:
    await api.get("/rest/v1.0/me", headers=auth(token))

    await api.delete("/_sim/calls")
    assert (await calls(api))["total"] == 0
    await api.get("/rest/v1.0/me", headers=auth(token))
    await api.post("/_sim/reset")

    assert (await calls(api))["total"] == 0
    assert (await stats(api))["token_grants"]["client_credentials"] == 0
