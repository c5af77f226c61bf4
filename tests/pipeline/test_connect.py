"""Connect to Procore: only from an issued link, single-use state bound to the browser."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import text

from app.connect.service import issue_connect_link
from app.runtime import Runtime
from app.setup.connect import STATE_COOKIE
from tests.harness import api_client, connect_user


async def _credentials(runtime: Runtime) -> list[dict[str, object]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT id, kind, procore_user_id, procore_login, access_token_enc,"
                " refresh_token_enc, access_expires_at, needs_reauth FROM credentials"
            )
        )
        return [r._asdict() for r in rows]


async def test_connect_stores_the_credential_and_the_companies_it_reaches(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    done = await connect_user(prt, sim, company_id=31)
    assert done.status_code == 200, done.text
    assert "Connected" in done.text
    [credential] = await _credentials(prt)
    assert credential["kind"] == "authorization_code"
    assert credential["procore_user_id"] == 77
    assert credential["procore_login"] == "pat.builder@example.com"
    assert credential["needs_reauth"] is False
    access = prt.vault.decrypt(credential["access_token_enc"])  # type: ignore[arg-type]
    refresh = prt.vault.decrypt(credential["refresh_token_enc"])  # type: ignore[arg-type]
    # Encrypted at rest: the stored bytes do not contain the tokens.
    assert access.encode() not in credential["access_token_enc"]  # type: ignore[operator]
    assert refresh.encode() not in credential["refresh_token_enc"]  # type: ignore[operator]
    async with prt.sessions() as session:
        served: dict[int, int] = dict(
            (
                await session.execute(
                    text("SELECT company_id, credential_id FROM company_credentials")
                )
            ).all()
        )
        calls = (
            await session.execute(text("SELECT purpose, path, status FROM procore_calls"))
        ).all()
    # The link was for company 31: the login reaches 32 and 33 too, which are left alone.
    assert served == {31: credential["id"]}
    assert "Now serving: " in done.text
    assert "left as they were" in done.text
    assert {(c.purpose, c.status) for c in calls} == {("token", 200), ("connect", 200)}


async def test_the_state_is_single_use_and_stored_hashed(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    async with prt.sessions() as session, session.begin():
        link = await issue_connect_link(session, prt.settings, 31)
    state = parse_qs(urlparse(link).query)["state"][0]
    async with prt.sessions() as session:
        stored = (await session.execute(text("SELECT state_hash FROM oauth_states"))).scalar_one()
    assert stored == hashlib.sha256(state.encode()).hexdigest()
    assert state not in stored

    async with api_client(prt.settings) as api:
        started = await api.get(link)
        authorized = await sim.get(started.headers["location"])
        callback = authorized.headers["location"]
        assert (await api.get(callback)).status_code == 200
        # The same link again: refused at the start and at the callback.
        assert (await api.get(link)).status_code == 400
        api.cookies.set(STATE_COOKIE, state, path="/connect/procore")
        replay = await api.get(callback)
        assert replay.status_code == 400
    assert len(await _credentials(prt)) == 1


async def test_the_callback_needs_the_browser_that_opened_the_link(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    async with prt.sessions() as session, session.begin():
        link = await issue_connect_link(session, prt.settings, 31)
    async with api_client(prt.settings) as api:
        started = await api.get(link)
        authorized = await sim.get(started.headers["location"])
        callback = authorized.headers["location"]
        api.cookies.clear()
        assert (await api.get(callback)).status_code == 400
    assert await _credentials(prt) == []


async def test_unknown_links_do_not_start_a_flow(prt: Runtime) -> None:
    async with api_client(prt.settings) as api:
        assert (await api.get("/connect/procore?state=guessed")).status_code == 400
        assert (await api.get("/connect/procore")).status_code == 400
        api.cookies.set(STATE_COOKIE, "guessed", path="/connect/procore")
        forged = await api.get("/connect/procore/callback?state=guessed&code=x")
        assert forged.status_code == 400
