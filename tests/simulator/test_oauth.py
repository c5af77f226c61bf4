"""OAuth as Procore's login service answers it (FACTS.md §3)."""

from __future__ import annotations

import base64

import httpx

from tests.simulator.procore import (
    CLIENT,
    REDIRECT_URI,
    auth,
    authorization_code,
    refresh,
    stats,
    user_tokens,
)


async def test_client_credentials_answer_has_procore_shape(api: httpx.AsyncClient) -> None:
    answer = await api.post("/oauth/token", data={"grant_type": "client_credentials", **CLIENT})

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "created_at"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 5400
    assert isinstance(body["created_at"], int)


async def test_token_endpoint_accepts_json_and_basic_auth(api: httpx.AsyncClient) -> None:
    as_json = await api.post("/oauth/token", json={"grant_type": "client_credentials", **CLIENT})
    basic = base64.b64encode(f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()).decode()
    as_basic = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )

    assert as_json.status_code == 200
    assert as_basic.status_code == 200


async def test_wrong_client_is_invalid_client_401(api: httpx.AsyncClient) -> None:
    wrong = {**CLIENT, "client_secret": "nope"}
    answer = await api.post("/oauth/token", data={"grant_type": "client_credentials", **wrong})

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert (await stats(api))["oauth_errors"]["invalid_client"] == 1


async def test_unknown_grant_type_is_400(api: httpx.AsyncClient) -> None:
    answer = await api.post("/oauth/token", data={"grant_type": "password", **CLIENT})

    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


async def test_access_token_expires(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/tokens", json={"access_token_ttl_s": 30})
    answer = await api.post("/oauth/token", data={"grant_type": "client_credentials", **CLIENT})
    token = answer.json()["access_token"]
    assert answer.json()["expires_in"] == 30
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200

    await api.post("/_sim/clock", json={"advance_s": 31})
    expired = await api.get("/rest/v1.0/me", headers=auth(token))

    assert expired.status_code == 401
    assert expired.json() == {"errors": "The access token expired"}
    assert "invalid_token" in expired.headers["www-authenticate"]


async def test_expire_all_tokens_now(api: httpx.AsyncClient, token: str) -> None:
    answer = await api.post("/_sim/tokens/expire")

    assert answer.json() == {"expired": 1}
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 401


async def test_authorize_redirects_with_single_use_code(api: httpx.AsyncClient) -> None:
    code = await authorization_code(api, state="xyz")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        **CLIENT,
    }

    first = await api.post("/oauth/token", data=form)
    second = await api.post("/oauth/token", data=form)

    assert first.status_code == 200
    assert set(first.json()) == {
        "access_token",
        "token_type",
        "expires_in",
        "created_at",
        "refresh_token",
    }
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


async def test_authorization_code_expires_after_ten_minutes(api: httpx.AsyncClient) -> None:
    code = await authorization_code(api)
    await api.post("/_sim/clock", json={"advance_s": 601})
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        **CLIENT,
    }

    answer = await api.post("/oauth/token", data=form)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_authorize_denial_switch(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/switches", json={"authorize_consents": False})
    answer = await api.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT["client_id"],
            "redirect_uri": REDIRECT_URI,
            "state": "q",
        },
    )

    location = httpx.URL(answer.headers["location"])
    assert answer.status_code == 302
    assert location.params["error"] == "access_denied"
    assert location.params["state"] == "q"


async def test_user_token_acts_as_the_consenting_user(api: httpx.AsyncClient) -> None:
    tokens = await user_tokens(api)

    me = await api.get("/rest/v1.0/me", headers=auth(tokens["access_token"]))

    assert me.json() == {"id": 77, "login": "pat.builder@example.com", "name": "Pat Builder"}


async def test_refresh_rotates_and_reuse_is_rejected(api: httpx.AsyncClient) -> None:
    tokens = await user_tokens(api)

    rotated = await refresh(api, tokens["refresh_token"])
    reused = await refresh(api, tokens["refresh_token"])

    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    assert rotated.json()["access_token"] != tokens["access_token"]
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    counted = await stats(api)
    assert counted["refreshes"] == 2
    assert counted["token_grants"]["refresh_token"] == 1
    assert counted["invalid_grant"] == 1


async def test_reuse_kills_the_rotated_token_too(api: httpx.AsyncClient) -> None:
    """Two concurrent refreshes lock the integration out until someone re-authorizes."""
    tokens = await user_tokens(api)
    rotated = (await refresh(api, tokens["refresh_token"])).json()

    await refresh(api, tokens["refresh_token"])
    locked_out = await refresh(api, rotated["refresh_token"])

    assert locked_out.status_code == 400
    assert locked_out.json()["error"] == "invalid_grant"


async def test_reuse_can_spare_the_rotated_token(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/switches", json={"refresh_reuse_revokes_family": False})
    tokens = await user_tokens(api)
    rotated = (await refresh(api, tokens["refresh_token"])).json()

    await refresh(api, tokens["refresh_token"])
    still_fine = await refresh(api, rotated["refresh_token"])

    assert still_fine.status_code == 200


async def test_failed_refresh_also_kills_the_old_token(api: httpx.AsyncClient) -> None:
    tokens = await user_tokens(api)

    failed = await refresh(api, tokens["refresh_token"], client_secret="wrong")
    retried = await refresh(api, tokens["refresh_token"])

    assert failed.status_code == 401
    assert failed.json()["error"] == "invalid_client"
    assert retried.status_code == 400
    assert retried.json()["error"] == "invalid_grant"


async def test_token_info_and_revoke(api: httpx.AsyncClient, token: str) -> None:
    info = await api.get("/oauth/token/info", headers={"Authorization": f"Bearer {token}"})
    revoked = await api.post("/oauth/revoke", data={"token": token, **CLIENT})
    after = await api.get("/oauth/token/info", headers={"Authorization": f"Bearer {token}"})

    assert info.status_code == 200
    assert info.json()["application"] == {"uid": CLIENT["client_id"]}
    assert 5390 <= info.json()["expires_in"] <= 5400
    assert revoked.status_code == 200
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"


async def test_revoked_client_gets_401_everywhere_until_registered_again(
    api: httpx.AsyncClient, token: str
) -> None:
    await api.post(f"/_sim/clients/{CLIENT['client_id']}/revoke")

    me = await api.get("/rest/v1.0/me", headers=auth(token))
    rfi = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    grant = await api.post("/oauth/token", data={"grant_type": "client_credentials", **CLIENT})
    assert me.status_code == rfi.status_code == 401
    assert me.json() == {"errors": "The access token was revoked"}
    assert grant.status_code == 401

    await api.post("/_sim/clients", json=CLIENT)
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200


async def test_registered_client_can_get_tokens(api: httpx.AsyncClient) -> None:
    other = {"client_id": "other-app", "client_secret": "other-secret"}
    created = await api.post("/_sim/clients", json=other)
    answer = await api.post("/oauth/token", data={"grant_type": "client_credentials", **other})

    assert created.status_code == 201
    assert answer.status_code == 200
    me = await api.get("/rest/v1.0/me", headers=auth(answer.json()["access_token"]))
    assert me.json()["login"].startswith("other-app")
