"""Connect to Procore: a link for company X attaches X only; the setup page's Connect form is
CSRF-protected; minting is rate-limited and expired links pruned; connect pages carry the
setup pages' headers; a failed code exchange leaves the link usable, as the page says.

Procore's authorization-code flow (FACTS.md §3, `oauth/oauth_auth_code.md`): a code is
single-use and valid 10 minutes; `GET /rest/v1.0/companies` lists the companies a login reaches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy import text

from app.connect.service import issue_connect_link, link_is_live
from app.models import GateScope, GateState
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from app.setup import links
from tests.conftest import ADMIN_TOKEN
from tests.harness import api_client, connect_user
from tests.test_webhooks import park

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAGE_HEADERS = ("Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options")


async def served(runtime: Runtime) -> dict[int, int]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT company_id, credential_id FROM company_credentials")
        )
        return {int(c): int(k) for c, k in rows.all()}


async def gate_state(runtime: Runtime, key: str) -> str:
    async with runtime.sessions() as session:
        return str(
            (
                await session.execute(
                    text("SELECT state FROM gates WHERE scope_key = :k"), {"k": key}
                )
            ).scalar_one()
        )


async def links_stored(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(text("SELECT count(*) FROM oauth_states"))).scalar_one())


async def test_a_link_for_one_company_attaches_that_company_only(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    await park(prt, GateScope.COMPANY, 31, None)
    done = await connect_user(prt, sim, company_id=33)
    assert done.status_code == 200, done.text
    [credential] = set((await served(prt)).values())
    assert await served(prt) == {33: credential}
    # Company 31 is reachable with that login, but nobody asked for it: still parked, reported.
    assert await gate_state(prt, "company:31") == GateState.PARKED.value
    assert "left as they were" in done.text
    for header in PAGE_HEADERS:
        assert header in done.headers


async def test_an_operator_link_without_a_company_attaches_every_reachable_company(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    await park(prt, GateScope.COMPANY, 31, None)
    done = await connect_user(prt, sim, company_id=None)
    assert done.status_code == 200, done.text
    assert set(await served(prt)) == {31, 32, 33}, done.text
    assert set(await served(prt)) == {31, 32, 33}
    assert await gate_state(prt, "company:31") == GateState.OPEN.value


async def test_a_failed_code_exchange_leaves_the_link_usable(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    async with prt.sessions() as session, session.begin():
        link = await issue_connect_link(session, prt.settings, 31)
    state = parse_qs(urlsplit(link).query)["state"][0]
    async with api_client(prt.settings) as api:
        started = await api.get(link)
        assert started.status_code == 302
        forged = urlencode({"state": state, "code": "not-a-code-procore-issued"})
        failed = await api.get(f"/connect/procore/callback?{forged}")
        assert failed.status_code == 502
        assert "The link can be used again." in failed.text
        for header in PAGE_HEADERS:
            assert header in failed.headers
        async with prt.sessions() as session:
            assert await link_is_live(session, state)
        # ... and it is: the same link completes.
        again = await api.get(link)
        authorized = await sim.get(again.headers["location"])
        assert (await api.get(authorized.headers["location"])).status_code == 200
    assert set(await served(prt)) == {31}


async def test_connect_pages_carry_the_setup_pages_headers(prt: Runtime) -> None:
    async with api_client(prt.settings) as api:
        for path in ("/connect/procore?state=guessed", "/connect/procore/callback?state=x"):
            page = await api.get(path)
            assert page.status_code == 400
            for header in PAGE_HEADERS:
                assert header in page.headers, (path, header)
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def signed_form(api: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    signed = urlsplit(links.setup_link(settings, 31).url)
    page = await api.get(f"{signed.path}?{signed.query}")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return {**{k: v[0] for k, v in parse_qs(signed.query).items()}, "csrf": match.group(1)}


async def test_the_connect_form_refuses_cross_site_posts(prt: Runtime) -> None:
    async with api_client(prt.settings) as api:
        form = await signed_form(api, prt.settings)
        refusals = [
            ({**form, "csrf": "guessed"}, {}),
            ({k: v for k, v in form.items() if k != "csrf"}, {}),
            (form, {"Origin": "https://attacker.test"}),
            (form, {"Sec-Fetch-Site": "cross-site"}),
        ]
        for data, headers in refusals:
            refused = await api.post("/setup/connect", data=data, headers=headers)
            assert refused.status_code == 403, (data, headers)
            assert "location" not in refused.headers
        api.cookies.clear()
        assert (await api.post("/setup/connect", data=form)).status_code == 403
        assert await links_stored(prt) == 0
        # From the page itself (same origin, the cookie and the token): a link.
        form = await signed_form(api, prt.settings)
        same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        settings_origin = prt.settings.public_base_url
        accepted = await api.post(
            "/setup/connect", data=form, headers={**same, "Origin": settings_origin}
        )
        assert accepted.status_code == 303
    assert await links_stored(prt) == 1


async def test_minting_is_rate_limited_and_expired_links_are_pruned(
    prt: Runtime, pipeline_settings: Callable[..., Settings]
) -> None:
    async with prt.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO oauth_states (state_hash, company_id, issued_by, created_at,"
                " expires_at) VALUES ('old', 31, 'test', :at, :at)"
            ),
            {"at": datetime.now(UTC) - timedelta(days=10)},
        )
    limited = pipeline_settings(connect_links_per_hour=2)
    runtime = open_runtime(limited, name="connect-limit-test")
    try:
        async with api_client(limited) as api:
            answers = [
                (await api.post("/admin/connect-links", json={"company_id": 31}, headers=ADMIN))
                for _ in range(3)
            ]
            assert [a.status_code for a in answers] == [200, 200, 429]
            assert "last hour" in answers[2].json()["detail"]
            other = await api.post("/admin/connect-links", json={"company_id": 32}, headers=ADMIN)
            assert other.status_code == 200
            form = await signed_form(api, limited)
            same = {"Origin": limited.public_base_url}
            page = await api.post("/setup/connect", data=form, headers=same)
            assert page.status_code == 429
    finally:
        await runtime.close()
    async with prt.sessions() as session:
        hashes = (await session.execute(text("SELECT state_hash FROM oauth_states"))).scalars()
        assert "old" not in set(hashes)
    assert await links_stored(prt) == 3
