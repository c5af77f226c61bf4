"""OAuth grants and tokens, as Procore's login service behaves (FACTS.md §3). Pure: no I/O.

- client_credentials: an access token for the client's service account, no refresh token.
- authorization_code: a single-use code (10 minutes) for an access + refresh token pair.
- refresh_token: single-use and rotating. Any refresh call that presents a live refresh
  token kills it, whether or not the call then succeeds. Presenting one that was already
  used answers `invalid_grant` and (switch `reuse_revokes_family`, on by default) also kills
  the refresh token that replaced it, which is how two concurrent refreshes lock an
  integration out until a person re-authorizes.
- revocation (`oauth/oauth_endpoints.md`, "Revoke Token"): "revokes both the Access Token and
  Refresh Token": revoking either token of a pair kills the other one too; an unknown token
  is ignored (the endpoint answers 200 all the same).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum

CODE_TTL_S = 600.0


class GrantType(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    AUTHORIZATION_CODE = "authorization_code"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name, not a secret


class OAuthError(StrEnum):
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    INVALID_REQUEST = "invalid_request"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"


ERROR_STATUS: dict[OAuthError, int] = {
    OAuthError.INVALID_CLIENT: 401,
    OAuthError.INVALID_GRANT: 400,
    OAuthError.INVALID_REQUEST: 400,
    OAuthError.UNSUPPORTED_GRANT_TYPE: 400,
}

ERROR_DESCRIPTION: dict[OAuthError, str] = {
    OAuthError.INVALID_CLIENT: (
        "Client authentication failed due to unknown client, no client authentication "
        "included, or unsupported authentication method."
    ),
    OAuthError.INVALID_GRANT: (
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client."
    ),
    OAuthError.INVALID_REQUEST: (
        "The request is missing a required parameter, includes an unsupported parameter "
        "value, or is otherwise malformed."
    ),
    OAuthError.UNSUPPORTED_GRANT_TYPE: (
        "The authorization grant type is not supported by the authorization server."
    ),
}


class TokenProblem(StrEnum):
    """Why an access token is refused; the values are the texts Procore answers with."""

    INVALID = "The access token is invalid"
    EXPIRED = "The access token expired"
    REVOKED = "The access token was revoked"


@dataclass(slots=True)
class Client:
    client_id: str
    secret: str
    revoked: bool = False


@dataclass(slots=True)
class AccessToken:
    token: str
    client_id: str
    user_id: int
    service_account: bool
    created_at: float
    expires_at: float
    revoked: bool = False
    # The refresh token issued with this access token (authorization code and refresh grants).
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class RefreshToken:
    token: str
    client_id: str
    user_id: int
    family: int
    used: bool = False
    # The access token issued with this refresh token.
    access_token: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: int
    expires_at: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class Issued:
    access: AccessToken
    refresh: RefreshToken | None

    def answer(self) -> dict[str, str | int]:
        body: dict[str, str | int] = {
            "access_token": self.access.token,
            "token_type": "bearer",
            "expires_in": round(self.access.expires_at - self.access.created_at),
            "created_at": int(self.access.created_at),
        }
        if self.refresh is not None:
            body["refresh_token"] = self.refresh.token
        return body


@dataclass(slots=True)
class TokenStats:
    grants: dict[str, int] = field(default_factory=lambda: {g.value: 0 for g in GrantType})
    refreshes: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {e.value: 0 for e in OAuthError})


class TokenStore:
    def __init__(self, access_ttl_s: float) -> None:
        self.access_ttl_s = access_ttl_s
        self.reuse_revokes_family = True
        self.clients: dict[str, Client] = {}
        self.stats = TokenStats()
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._live_refresh_by_family: dict[int, str] = {}
        self._next_family = 1

    # -- clients ---------------------------------------------------------------------------

    def register(self, client_id: str, secret: str) -> None:
        """Register (or re-register) a client; re-registering lifts a revocation."""
        self.clients[client_id] = Client(client_id, secret)

    def revoke_client(self, client_id: str) -> bool:
        client = self.clients.get(client_id)
        if client is None:
            return False
        client.revoked = True
        return True

    def authenticate_client(self, client_id: str | None, secret: str | None) -> Client | None:
        client = self.clients.get(client_id or "")
        if client is None or client.revoked or secret is None:
            return None
        if not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client

    # -- grants ----------------------------------------------------------------------------

    def client_credentials(self, client: Client, service_account_id: int, now: float) -> Issued:
        self.stats.grants[GrantType.CLIENT_CREDENTIALS] += 1
        return Issued(self._mint_access(client.client_id, service_account_id, True, now), None)

    def issue_code(self, client_id: str, redirect_uri: str, user_id: int, now: float) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = AuthorizationCode(
            code, client_id, redirect_uri, user_id, now + CODE_TTL_S
        )
        return code

    def exchange_code(
        self, client: Client, code: str, redirect_uri: str | None, now: float
    ) -> Issued | OAuthError:
        grant = self._codes.get(code)
        if (
            grant is None
            or grant.used
            or grant.client_id != client.client_id
            or now >= grant.expires_at
            or (redirect_uri is not None and redirect_uri != grant.redirect_uri)
        ):
            return self._fail(OAuthError.INVALID_GRANT)
        grant.used = True
        self.stats.grants[GrantType.AUTHORIZATION_CODE] += 1
        family = self._next_family
        self._next_family += 1
        return self._pair(client.client_id, grant.user_id, family, now)

    def refresh(self, client: Client | None, refresh_token: str, now: float) -> Issued | OAuthError:
        """Rotate a refresh token; `client` is None when client authentication failed."""
        self.stats.refreshes += 1
        presented = self._refresh.get(refresh_token)
        if presented is None:
            return self._fail(OAuthError.INVALID_GRANT if client else OAuthError.INVALID_CLIENT)
        if presented.used:
            if self.reuse_revokes_family:
                self._kill_family(presented.family)
            return self._fail(OAuthError.INVALID_GRANT if client else OAuthError.INVALID_CLIENT)
        # Any call presenting a live refresh token consumes it, successful or not.
        presented.used = True
        self._live_refresh_by_family.pop(presented.family, None)
        if client is None:
            return self._fail(OAuthError.INVALID_CLIENT)
        if client.client_id != presented.client_id:
            return self._fail(OAuthError.INVALID_GRANT)
        self.stats.grants[GrantType.REFRESH_TOKEN] += 1
        return self._pair(client.client_id, presented.user_id, presented.family, now)

    def fail(self, error: OAuthError) -> OAuthError:
        """Count an error decided outside the store (bad request shape, unknown client)."""
        return self._fail(error)

    # -- access tokens ---------------------------------------------------------------------

    def check(self, token: str, now: float) -> AccessToken | TokenProblem:
        access = self._access.get(token)
        if access is None:
            return TokenProblem.INVALID
        client = self.clients.get(access.client_id)
        if access.revoked or client is None or client.revoked:
            return TokenProblem.REVOKED
        if now >= access.expires_at:
            return TokenProblem.EXPIRED
        return access

    def revoke_token(self, token: str, client_id: str) -> bool:
        """Revoke an access or a refresh token of `client_id` and the other token of its pair.
        Returns whether the token was known; unknown tokens (and other clients') are ignored."""
        access = self._access.get(token)
        refresh = self._refresh.get(token)
        if (access is not None and access.client_id != client_id) or (
            refresh is not None and refresh.client_id != client_id
        ):
            return False
        if access is not None and access.refresh_token is not None:
            refresh = self._refresh.get(access.refresh_token)
        elif refresh is not None and refresh.access_token is not None:
            access = self._access.get(refresh.access_token)
        if access is not None:
            access.revoked = True
        if refresh is not None and not refresh.used:
            refresh.used = True
            if self._live_refresh_by_family.get(refresh.family) == refresh.token:
                del self._live_refresh_by_family[refresh.family]
        return access is not None or refresh is not None

    def expire_all(self, now: float) -> int:
        live = [a for a in self._access.values() if a.expires_at > now]
        for access in live:
            access.expires_at = now
        return len(live)

    # -- internals -------------------------------------------------------------------------

    def _pair(self, client_id: str, user_id: int, family: int, now: float) -> Issued:
        refresh = RefreshToken(secrets.token_hex(32), client_id, user_id, family)
        access = self._mint_access(client_id, user_id, False, now)
        access.refresh_token, refresh.access_token = refresh.token, access.token
        self._refresh[refresh.token] = refresh
        self._live_refresh_by_family[family] = refresh.token
        return Issued(access, refresh)

    def _mint_access(self, client_id: str, user_id: int, dmsa: bool, now: float) -> AccessToken:
        access = AccessToken(
            token=secrets.token_hex(32),
            client_id=client_id,
            user_id=user_id,
            service_account=dmsa,
            created_at=now,
            expires_at=now + self.access_ttl_s,
        )
        self._access[access.token] = access
        return access

    def _kill_family(self, family: int) -> None:
        live = self._live_refresh_by_family.pop(family, None)
        if live is not None:
            self._refresh[live].used = True

    def _fail(self, error: OAuthError) -> OAuthError:
        self.stats.errors[error] += 1
        return error
