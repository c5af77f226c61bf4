"""OAuth as Procore's login service answers it (FACTS.md §3)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

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
    assert 5390 <= info.json()["expires_in_seconds"] <= 5400
    assert revoked.status_code == 200
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"


async def test_token_info_has_exactly_the_openapi_fields(api: httpx.AsyncClient) -> None:
    """OpenAPI OauthTokenInfoGet: resource_owner_id (integer), scopes (array of strings),
    expires_in_seconds (integer), application {uid}, created_at (integer)."""
    tokens = await user_tokens(api)

    info = await api.get(
        "/oauth/token/info", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    body = info.json()
    assert info.status_code == 200
    assert set(body) == {
        "resource_owner_id",
        "scopes",
        "expires_in_seconds",
        "application",
        "created_at",
    }
    assert body["resource_owner_id"] == 77
    assert body["scopes"] == []
    assert 5390 <= body["expires_in_seconds"] <= 5400
    assert body["application"] == {"uid": CLIENT["client_id"]}
    assert body["created_at"] == tokens["created_at"]


def _multipart(fields: dict[str, str]) -> dict[str, tuple[None, str]]:
    """Form fields sent as multipart/form-data parts without a file name (`curl -F k=v`)."""
    return {name: (None, value) for name, value in fields.items()}


def _basic() -> str:
    pair = f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


async def _post(api: httpx.AsyncClient, path: str, encoding: str, fields: dict[str, str]) -> Any:
    if encoding == "form":
        return await api.post(path, data=fields)
    if encoding == "json":
        return await api.post(path, json=fields)
    if encoding == "multipart":
        answer = await api.post(path, files=_multipart(fields))
        assert answer.request.headers["content-type"].startswith("multipart/form-data")
        return answer
    assert encoding == "basic"
    without = {k: v for k, v in fields.items() if k not in CLIENT}
    return await api.post(path, data=without, headers={"Authorization": _basic()})


ENCODINGS = ["form", "json", "multipart", "basic"]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_client_credentials_in_every_encoding(api: httpx.AsyncClient, encoding: str) -> None:
    """`oauth/oauth_client_credentials.md` (`curl -F grant_type=client_credentials ...`), the
    JS SDK (JSON), pyprocore (form), ProPyCore (HTTP Basic + form)."""
    fields = {"grant_type": "client_credentials", **CLIENT}

    answer = await _post(api, "/oauth/token", encoding, fields)

    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "bearer"
    me = await api.get("/rest/v1.0/me", headers=auth(answer.json()["access_token"]))
    assert me.status_code == 200


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_code_and_refresh_grants_in_every_encoding(
    api: httpx.AsyncClient, encoding: str
) -> None:
    """`oauth/oauth_endpoints.md`, "Get Or Refresh an Access Token": `curl -F
    grant_type=authorization_code -F client_id -F client_secret -F code -F redirect_uri`."""
    code = await authorization_code(api)
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        **CLIENT,
    }

    exchanged = await _post(api, "/oauth/token", encoding, exchange)
    assert exchanged.status_code == 200, exchanged.text
    refreshed = await _post(
        api,
        "/oauth/token",
        encoding,
        {
            "grant_type": "refresh_token",
            "refresh_token": exchanged.json()["refresh_token"],
            **CLIENT,
        },
    )

    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != exchanged.json()["refresh_token"]


async def test_multipart_with_a_file_part_is_refused(api: httpx.AsyncClient) -> None:
    """An OAuth request carries short fields only: a file part is a malformed request, and
    no token is issued."""
    files = {**_multipart({"grant_type": "client_credentials", **CLIENT})}
    files["client_secret"] = ("secret.txt", CLIENT["client_secret"])  # type: ignore[assignment]

    answer = await api.post("/oauth/token", files=files)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert (await stats(api))["token_grants"]["client_credentials"] == 0


async def test_unreadable_multipart_is_invalid_request(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/oauth/token",
        content=b"--nope\r\nno headers, no end",
        headers={"Content-Type": "multipart/form-data; boundary=other"},
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert (await stats(api))["token_grants"]["client_credentials"] == 0


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_revoking_the_access_token_kills_its_refresh_token(
    api: httpx.AsyncClient, encoding: str
) -> None:
    """`oauth/oauth_endpoints.md`, "Revoke Token": "the Revoke Token endpoint revokes both the
    Access Token and Refresh Token"; parameters token, client_id, client_secret in the body
    ("as form-data"; JSON per OpenAPI OauthRevokePost)."""
    tokens = await user_tokens(api)

    revoked = await _post(
        api, "/oauth/revoke", encoding, {"token": tokens["access_token"], **CLIENT}
    )

    assert revoked.status_code == 200
    assert revoked.json() == {}
    me = await api.get("/rest/v1.0/me", headers=auth(tokens["access_token"]))
    assert me.status_code == 401
    assert me.json() == {"errors": "The access token was revoked"}
    dead = await refresh(api, tokens["refresh_token"])
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_grant"


async def test_revoking_the_refresh_token_kills_its_access_token(api: httpx.AsyncClient) -> None:
    """Same source: one revocation ends the pair, whichever of its tokens is presented."""
    tokens = await user_tokens(api)

    revoked = await api.post("/oauth/revoke", data={"token": tokens["refresh_token"], **CLIENT})

    assert revoked.status_code == 200
    assert (await api.get("/rest/v1.0/me", headers=auth(tokens["access_token"]))).status_code == 401
    assert (await refresh(api, tokens["refresh_token"])).status_code == 400


async def test_revoke_spares_other_pairs_of_the_same_user(api: httpx.AsyncClient) -> None:
    first = await user_tokens(api)
    second = await user_tokens(api)

    await api.post("/oauth/revoke", data={"token": first["access_token"], **CLIENT})

    assert (await api.get("/rest/v1.0/me", headers=auth(second["access_token"]))).status_code == 200
    assert (await refresh(api, second["refresh_token"])).status_code == 200


async def test_revoke_of_an_unknown_token_answers_200(api: httpx.AsyncClient) -> None:
    """ "If the token is revoked successfully, or if the client submits an invalid token, the
    authorization server responds with HTTP status code 200" (`oauth/oauth_endpoints.md`)."""
    answer = await api.post("/oauth/revoke", data={"token": "no-such-token", **CLIENT})

    assert answer.status_code == 200
    assert answer.json() == {}
    assert answer.headers["content-type"] == "application/json"


async def test_revoke_with_a_wrong_client_secret_is_refused(
    api: httpx.AsyncClient, token: str
) -> None:
    answer = await api.post(
        "/oauth/revoke", data={"token": token, **CLIENT, "client_secret": "wrong"}
    )

    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200


async def test_revoke_leaves_another_clients_token_alone(
    api: httpx.AsyncClient, token: str
) -> None:
    other = {"client_id": "other-app", "client_secret": "other-secret"}
    await api.post("/_sim/clients", json=other)

    answer = await api.post("/oauth/revoke", data={"token": token, **other})

    assert answer.status_code == 200
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200


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
