"""Procore's login service: `/oauth/token`, `/oauth/authorize`, `/oauth/token/info`,
`/oauth/revoke` (FACTS.md §3), answering in the shapes of the Doorkeeper server behind it.

Parameters are read from the query string and from the body in every encoding Procore's
clients use: form-urlencoded (pyprocore, the Ruby SDK), JSON (the JS SDK), multipart/form-data
(every `curl -F` example in `oauth/oauth_endpoints.md`); client credentials from the body or
HTTP Basic (ProPyCore).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from simulator.answers import json_answer
from simulator.state import Simulator
from simulator.tokens import (
    ERROR_DESCRIPTION,
    ERROR_STATUS,
    GrantType,
    Issued,
    OAuthError,
    TokenProblem,
)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# An OAuth request has a handful of short fields and never a file.
_MAX_FORM_FIELDS = 32
_MAX_FORM_PART_BYTES = 16 * 1024


class OAuthApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token/info", self.token_info, methods=["GET"]),
            Route("/oauth/revoke", self.revoke, methods=["POST"]),
        ]

    async def token(self, request: Request) -> Response:
        params = await _params(request)
        if params is None:
            return _error(self.sim.tokens.fail(OAuthError.INVALID_REQUEST))
        tokens = self.sim.tokens
        now = self.sim.now()
        client_id, secret = _client_credentials(request, params)
        grant = params.get("grant_type", "")
        if grant not in GrantType.__members__.values():
            return _error(tokens.fail(OAuthError.UNSUPPORTED_GRANT_TYPE))
        client = tokens.authenticate_client(client_id, secret)
        result: Issued | OAuthError
        if grant == GrantType.REFRESH_TOKEN:
            refresh_token = params.get("refresh_token")
            if not refresh_token:
                return _error(tokens.fail(OAuthError.INVALID_REQUEST))
            result = tokens.refresh(client, refresh_token, now)
        elif client is None:
            result = tokens.fail(OAuthError.INVALID_CLIENT)
        elif grant == GrantType.CLIENT_CREDENTIALS:
            account = self.sim.service_account(client.client_id)
            result = tokens.client_credentials(client, account.id, now)
        else:
            code = params.get("code")
            if not code:
                return _error(tokens.fail(OAuthError.INVALID_REQUEST))
            result = tokens.exchange_code(client, code, params.get("redirect_uri"), now)
        if isinstance(result, OAuthError):
            return _error(result)
        return json_answer(result.answer(), headers=_NO_STORE)

    async def authorize(self, request: Request) -> Response:
        """Auto-consent as the simulated user and send the browser back with a code."""
        params = dict(request.query_params)
        client = self.sim.tokens.clients.get(params.get("client_id", ""))
        if client is None or client.revoked:
            return _error(self.sim.tokens.fail(OAuthError.INVALID_CLIENT))
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            return _error(self.sim.tokens.fail(OAuthError.INVALID_REQUEST))
        state = params.get("state")
        if params.get("response_type") != "code":
            return _redirect(redirect_uri, error="unsupported_response_type", state=state)
        user_id = self.sim.authorizing_user_id
        if not self.sim.switches.authorize_consents or user_id is None:
            return _redirect(redirect_uri, error="access_denied", state=state)
        code = self.sim.tokens.issue_code(client.client_id, redirect_uri, user_id, self.sim.now())
        return _redirect(redirect_uri, code=code, state=state)

    async def token_info(self, request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = (
            value.strip()
            if scheme.lower() == "bearer"
            else request.query_params.get("access_token")
        )
        now = self.sim.now()
        checked = self.sim.tokens.check(token, now) if token else TokenProblem.INVALID
        if isinstance(checked, TokenProblem):
            body = {"error": "invalid_token", "error_description": checked.value}
            return json_answer(body, 401)
        # The fields of OpenAPI operation OauthTokenInfoGet, exactly.
        return json_answer(
            {
                "resource_owner_id": checked.user_id,
                "scopes": [],
                "expires_in_seconds": max(0, round(checked.expires_at - now)),
                "application": {"uid": checked.client_id},
                "created_at": int(checked.created_at),
            }
        )

    async def revoke(self, request: Request) -> Response:
        """`token`, `client_id`, `client_secret` in the body (OpenAPI OauthRevokePost). 200
        `{}` "if the token is revoked successfully, or if the client submits an invalid token"
        (`oauth/oauth_endpoints.md`); both tokens of the pair die. A token issued to another
        client is left alone, as an unknown one."""
        params = await _params(request)
        if params is None:
            return _error(self.sim.tokens.fail(OAuthError.INVALID_REQUEST))
        client_id, secret = _client_credentials(request, params)
        client = self.sim.tokens.authenticate_client(client_id, secret)
        if client is None:
            return _error(self.sim.tokens.fail(OAuthError.INVALID_CLIENT))
        token = params.get("token")
        if token:
            self.sim.tokens.revoke_token(token, client.client_id)
        return json_answer({})


async def _params(request: Request) -> dict[str, str] | None:
    """Query parameters overlaid by the body's; None when the body cannot be read."""
    params = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(
                max_files=0, max_fields=_MAX_FORM_FIELDS, max_part_size=_MAX_FORM_PART_BYTES
            )
        except HTTPException:  # malformed, too many fields, or a file part
            return None
        params.update((k, v) for k, v in form.multi_items() if isinstance(v, str))
        return params
    if content_type.startswith("application/json"):
        try:
            decoded: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(decoded, dict):
            return None
        params.update({str(k): str(v) for k, v in decoded.items() if v is not None})
        return params
    try:
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        return None
    return params


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return params.get("client_id"), params.get("client_secret")


def _error(error: OAuthError) -> Response:
    body = {"error": error.value, "error_description": ERROR_DESCRIPTION[error]}
    return json_answer(body, ERROR_STATUS[error], _NO_STORE)


def _redirect(uri: str, **query: str | None) -> Response:
    pairs = [(k, v) for k, v in query.items() if v is not None]
    joiner = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{joiner}{urlencode(pairs)}", status_code=302)
