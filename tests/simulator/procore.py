"""How the simulator's tests talk to it as a Procore client would."""

from __future__ import annotations

from typing import Any

import httpx

from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
REDIRECT_URI = "http://127.0.0.1:9/connect/procore/callback"


def auth(token: str, company_id: int | None = 31) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if company_id is not None:
        headers["Procore-Company-Id"] = str(company_id)
    return headers


async def client_credentials_token(api: httpx.AsyncClient) -> str:
    answer = await api.post("/oauth/token", data={"grant_type": "client_credentials", **CLIENT})
    answer.raise_for_status()
    access: str = answer.json()["access_token"]
    return access


async def authorization_code(api: httpx.AsyncClient, state: str = "s-1") -> str:
    answer = await api.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "state": state,
        },
    )
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["location"])
    assert location.params["state"] == state
    return location.params["code"]


async def user_tokens(api: httpx.AsyncClient) -> dict[str, Any]:
    """Run the authorization-code grant; returns the token answer (with refresh_token)."""
    code = await authorization_code(api)
    answer = await api.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            **CLIENT,
        },
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


async def refresh(api: httpx.AsyncClient, refresh_token: str, **overrides: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT, **overrides}
    return await api.post("/oauth/token", data=form)


async def stats(api: httpx.AsyncClient) -> dict[str, Any]:
    answer = await api.get("/_sim/stats")
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


async def calls(api: httpx.AsyncClient, **filters: int) -> dict[str, Any]:
    answer = await api.get("/_sim/calls", params=filters)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body
