"""Access tokens: which credential serves a company, minting, single-flight refresh.

- Client credentials (the app's service account, DMSA): a token is minted with
  PROCORE_CLIENT_ID/PROCORE_CLIENT_SECRET whenever the stored one is near expiry or refused.
- Authorization code (a connected user): refresh tokens are single-use and rotate, and any
  refresh call kills the old one (FACTS.md §3). So a renewal is single-flight across
  processes (a Postgres advisory lock per credential, plus an asyncio lock per process so
  one process waits on Postgres once), `refresh_started_at` is committed before the refresh
  is sent, and the new pair is committed the moment it arrives. A refresh whose answer is
  lost (timeout, crash) leaves `refresh_started_at` set: the next renewal sees it and marks
  the credential `needs_reauth` instead of presenting a dead token again.

Tokens are encrypted at rest (app.crypto.Vault) and kept decrypted in process memory only
briefly (TOKEN_CACHE_SECONDS), so the hot path is not a database round trip per call. No
token ever reaches a log line or an Outcome message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app import metrics
from app.crypto import InvalidToken, Vault, VaultUnavailable
from app.logs import get_logger
from app.models import CredentialKind
from app.procore.answers import Outcome, OutcomeKind, classify, message_of
from app.procore.calls import CallRecord, Purpose, record_calls
from app.settings import Settings

log = get_logger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)
# Postgres advisory lock namespace for credential renewals ("PH" + 1).
_LOCK_NAMESPACE = 0x5048_0001
_LOCK_POLL_SECONDS = 0.05
# A failed mint (client credentials) is not retried by every caller at once.
_FAILURE_MEMORY_SECONDS = 5.0
_MAPPING_CACHE_SECONDS = 30.0

REAUTHORIZE = (
    "re-authorize: open a new Connect-to-Procore link for this credential "
    "(its refresh token is no longer valid)"
)
RECONFIGURE = "re-authenticate: check PROCORE_CLIENT_ID / PROCORE_CLIENT_SECRET"


@dataclass(frozen=True, slots=True)
class CredentialRef:
    id: int
    kind: CredentialKind


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # unix seconds
    issued_at: float

    def usable(self, margin: float, now: float) -> bool:
        """Alive for longer than the refresh margin (at most half the token's lifetime, so a
        short-lived token is not renewed on every call)."""
        margin = min(margin, (self.expires_at - self.issued_at) / 2)
        return self.expires_at - margin > now


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A successful answer of the token endpoint."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float


def parse_grant(body: bytes) -> TokenGrant | None:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    access, refresh, expires_in = (
        data.get("access_token"),
        data.get("refresh_token"),
        data.get("expires_in"),
    )
    if not isinstance(access, str) or not access:
        return None
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = 5400
    return TokenGrant(access, refresh if isinstance(refresh, str) else None, float(expires_in))


def needs_reauth_outcome(credential_id: int, why: str = "") -> Outcome:
    detail = f" ({why})" if why else ""
    return Outcome(
        OutcomeKind.UNAUTHORIZED,
        None,
        f"credential {credential_id} needs re-authorization{detail}: {REAUTHORIZE}",
    )


@dataclass(slots=True)
class _Cached:
    token: AccessToken
    cached_at: float  # monotonic


@dataclass(frozen=True, slots=True)
class _Row:
    kind: CredentialKind
    client_id: str
    access_token_enc: bytes | None
    refresh_token_enc: bytes | None
    access_expires_at: datetime | None
    access_issued_at: datetime | None
    refresh_started_at: datetime | None
    needs_reauth: bool


_SELECT_ROW = text(
    """
    SELECT kind, client_id, access_token_enc, refresh_token_enc, access_expires_at,
           access_issued_at, refresh_started_at, needs_reauth
    FROM credentials WHERE id = :id
    """
)

_STORE_GRANT = text(
    """
    UPDATE credentials SET
        access_token_enc = :access, access_expires_at = :expires_at, access_issued_at = :issued_at,
        refresh_token_enc = COALESCE(:refresh, refresh_token_enc),
        refresh_started_at = NULL, needs_reauth = false, updated_at = now()
    WHERE id = :id
    """
)

_MARK_REFRESH_STARTED = text(
    "UPDATE credentials SET refresh_started_at = now(), updated_at = now() WHERE id = :id"
)

_MARK_NEEDS_REAUTH = text(
    """
    UPDATE credentials SET needs_reauth = true, refresh_started_at = NULL,
        access_token_enc = NULL, access_expires_at = NULL, updated_at = now()
    WHERE id = :id
    """
)

_CREDENTIAL_FOR_COMPANY = text(
    """
    SELECT c.id, c.kind FROM company_credentials cc
    JOIN credentials c ON c.id = cc.credential_id
    WHERE cc.company_id = :company_id
    """
)

_APP_CREDENTIAL = text(
    "SELECT id FROM credentials WHERE kind = 'client_credentials' AND client_id = :client_id"
)

_CREATE_APP_CREDENTIAL = text(
    """
    INSERT INTO credentials (kind, label, client_id)
    VALUES ('client_credentials', 'app service account', :client_id)
    ON CONFLICT (client_id) WHERE kind = 'client_credentials' DO NOTHING
    """
)


def _epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class TokenService:
    def __init__(
        self, *, engine: AsyncEngine, http: httpx.AsyncClient, settings: Settings, vault: Vault
    ) -> None:
        self._engine = engine
        self._http = http
        self._settings = settings
        self._vault = vault
        self._cache: dict[int, _Cached] = {}
        self._failures: dict[int, tuple[Outcome, float]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._mapping: dict[int, tuple[CredentialRef | None, bool, float]] = {}

    # -- which credential serves a company --------------------------------------------------

    async def credential_for(self, company_id: int) -> tuple[CredentialRef | None, bool]:
        """The credential serving `company_id`, and whether a company_credentials row says so
        (False: the app's service account, by default). None when there is no credential."""
        cached = self._mapping.get(company_id)
        if cached is not None and time.monotonic() - cached[2] < _MAPPING_CACHE_SECONDS:
            return cached[0], cached[1]
        async with self._engine.connect() as conn:
            row = (await conn.execute(_CREDENTIAL_FOR_COMPANY, {"company_id": company_id})).first()
            if row is not None:
                found: tuple[CredentialRef | None, bool] = (
                    CredentialRef(row.id, CredentialKind(row.kind)),
                    True,
                )
            else:
                app_id = await self._app_credential_id(conn)
                found = (
                    None
                    if app_id is None
                    else CredentialRef(app_id, CredentialKind.CLIENT_CREDENTIALS),
                    False,
                )
            await conn.commit()
        self._mapping[company_id] = (*found, time.monotonic())
        return found

    async def app_credential(self) -> CredentialRef | None:
        """The app's own service account (client credentials), if one is configured: it
        serves every company where the app is installed, and discovers them."""
        async with self._engine.connect() as conn:
            app_id = await self._app_credential_id(conn)
            await conn.commit()
        return None if app_id is None else CredentialRef(app_id, CredentialKind.CLIENT_CREDENTIALS)

    def forget_company(self, company_id: int) -> None:
        self._mapping.pop(company_id, None)

    async def _app_credential_id(self, conn: AsyncConnection) -> int | None:
        client_id = self._settings.procore_client_id
        if not client_id:
            return None
        params = {"client_id": client_id}
        found = (await conn.execute(_APP_CREDENTIAL, params)).scalar_one_or_none()
        if found is None:
            await conn.execute(_CREATE_APP_CREDENTIAL, params)
            found = (await conn.execute(_APP_CREDENTIAL, params)).scalar_one()
        return int(found)

    # -- access tokens -----------------------------------------------------------------------

    async def access_token(self, credential: CredentialRef) -> AccessToken | Outcome:
        """A usable access token, renewed first if it is missing or near expiry."""
        cached = self._usable_cached(credential.id)
        if cached is not None:
            return cached
        failure = self._recent_failure(credential.id)
        if failure is not None:
            return failure
        async with self._engine.connect() as conn:
            row = await self._read(conn, credential.id)
            await conn.commit()
        if row is None:
            return Outcome(OutcomeKind.UNAUTHORIZED, None, f"credential {credential.id} is gone")
        if row.needs_reauth:
            return self._remember_failure(credential.id, needs_reauth_outcome(credential.id))
        token = self._usable_stored(row, rejected=None)
        if token is not None:
            self._cache[credential.id] = _Cached(token, time.monotonic())
            return token
        return await self.renew(credential, rejected=None)

    async def renew(
        self, credential: CredentialRef, *, rejected: str | None
    ) -> AccessToken | Outcome:
        """Mint or refresh, once across all processes. `rejected` is the token Procore just
        refused (401); a token other than that one, renewed meanwhile, is used as it is."""
        lock = self._locks.setdefault(credential.id, asyncio.Lock())
        async with lock:
            cached = self._usable_cached(credential.id)
            if cached is not None and cached.value != rejected:
                return cached
            self._cache.pop(credential.id, None)
            failure = self._recent_failure(credential.id)
            if failure is not None:
                return failure
            async with self._engine.connect() as conn:
                if not await self._advisory_lock(conn, credential.id):
                    return Outcome(
                        OutcomeKind.TRANSIENT, None, "timed out waiting for a token renewal"
                    )
                try:
                    result = await self._renew_locked(conn, credential, rejected)
                finally:
                    await self._advisory_unlock(conn, credential.id)
        if isinstance(result, AccessToken):
            self._cache[credential.id] = _Cached(result, time.monotonic())
        return result

    def forget(self, credential_id: int) -> None:
        """Drop what this process remembers of a credential (it was re-authorized)."""
        self._cache.pop(credential_id, None)
        self._failures.pop(credential_id, None)

    async def _renew_locked(
        self, conn: AsyncConnection, credential: CredentialRef, rejected: str | None
    ) -> AccessToken | Outcome:
        row = await self._read(conn, credential.id)
        await conn.commit()
        if row is None:
            return Outcome(OutcomeKind.UNAUTHORIZED, None, f"credential {credential.id} is gone")
        if row.needs_reauth:
            return self._remember_failure(credential.id, needs_reauth_outcome(credential.id))
        # Renewed by another process while we waited for the lock?
        token = self._usable_stored(row, rejected=rejected)
        if token is not None:
            return token
        if row.kind is CredentialKind.CLIENT_CREDENTIALS:
            return await self._mint(conn, credential, row)
        return await self._refresh(conn, credential, row)

    async def _mint(
        self, conn: AsyncConnection, credential: CredentialRef, row: _Row
    ) -> AccessToken | Outcome:
        settings = self._settings
        if row.client_id != settings.procore_client_id:
            why = f"no secret is configured for client {row.client_id!r}: {RECONFIGURE}"
            return self._remember_failure(
                credential.id, Outcome(OutcomeKind.UNAUTHORIZED, None, why)
            )
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.procore_client_id,
            "client_secret": settings.procore_client_secret.get_secret_value(),
        }
        started = time.time()
        status, body, call = await self._post_token(form, credential.id)
        grant = parse_grant(body) if status == 200 else None
        if grant is not None:
            token = await self._store(conn, credential.id, grant, started, call)
            metrics.token_refresh("ok", "client_credentials")
            log.info("token.minted", credential_id=credential.id)
            return token
        await record_calls(conn, [call])
        await conn.commit()
        outcome = classify(status, {}, body)
        if status == 200:
            outcome = Outcome(OutcomeKind.TRANSIENT, status, "token answer without access_token")
        elif outcome.kind in (OutcomeKind.UNAUTHORIZED, OutcomeKind.REJECTED):
            # invalid_client: our client id/secret are wrong or the app was revoked.
            outcome = Outcome(
                OutcomeKind.UNAUTHORIZED,
                status,
                f"client credentials refused ({outcome.message}): {RECONFIGURE}",
            )
        refused = outcome.kind is OutcomeKind.UNAUTHORIZED
        metrics.token_refresh("refused" if refused else "failed", "client_credentials")
        log.warning("token.mint_failed", credential_id=credential.id, status=status)
        return self._remember_failure(credential.id, outcome)

    async def _refresh(
        self, conn: AsyncConnection, credential: CredentialRef, row: _Row
    ) -> AccessToken | Outcome:
        if row.refresh_started_at is not None:
            # A refresh was sent and its answer never committed: Procore has already killed
            # that refresh token, and presenting it again would only be refused.
            log.warning("token.refresh_lost", credential_id=credential.id)
            metrics.token_refresh("lost")
            return await self._mark_needs_reauth(conn, credential.id, "a refresh answer was lost")
        refresh_token = self._decrypt(row.refresh_token_enc)
        if refresh_token is None:
            return await self._mark_needs_reauth(conn, credential.id, "no refresh token stored")
        await conn.execute(_MARK_REFRESH_STARTED, {"id": credential.id})
        await conn.commit()
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": row.client_id,
            "client_secret": self._settings.procore_client_secret.get_secret_value(),
        }
        started = time.time()
        # If this task dies here, `refresh_started_at` stays set: the next renewal knows.
        status, body, call = await self._post_token(form, credential.id)
        grant = parse_grant(body) if status == 200 else None
        if grant is not None:
            token = await self._store(conn, credential.id, grant, started, call)
            metrics.token_refresh("ok")
            log.info("token.refreshed", credential_id=credential.id)
            return token
        # Any refresh call kills the old refresh token, whatever it answered.
        await record_calls(conn, [call])
        why = f"refresh answered {status}: {message_of(body.decode('utf-8', 'replace'))}"
        metrics.token_refresh("lost" if status is None else "refused")
        log.warning("token.refresh_failed", credential_id=credential.id, status=status)
        return await self._mark_needs_reauth(conn, credential.id, why)

    async def _mark_needs_reauth(
        self, conn: AsyncConnection, credential_id: int, why: str
    ) -> Outcome:
        await conn.execute(_MARK_NEEDS_REAUTH, {"id": credential_id})
        await conn.commit()
        return self._remember_failure(credential_id, needs_reauth_outcome(credential_id, why))

    async def _store(
        self,
        conn: AsyncConnection,
        credential_id: int,
        grant: TokenGrant,
        started: float,
        call: CallRecord,
    ) -> AccessToken:
        expires_at = started + grant.expires_in
        await conn.execute(
            _STORE_GRANT,
            {
                "id": credential_id,
                "access": self._vault.encrypt(grant.access_token),
                "expires_at": _moment(expires_at),
                "issued_at": _moment(started),
                "refresh": (
                    None
                    if grant.refresh_token is None
                    else self._vault.encrypt(grant.refresh_token)
                ),
            },
        )
        await record_calls(conn, [call])
        # Committed the moment it arrives: the old refresh token is already dead.
        await conn.commit()
        self._failures.pop(credential_id, None)
        return AccessToken(grant.access_token, expires_at, started)

    async def _post_token(
        self, form: Mapping[str, str], credential_id: int | None
    ) -> tuple[int | None, bytes, CallRecord]:
        return await post_token(self._http, self._settings, form, credential_id)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _margin(self) -> float:
        return self._settings.token_refresh_margin_seconds

    async def _read(self, conn: AsyncConnection, credential_id: int) -> _Row | None:
        row = (await conn.execute(_SELECT_ROW, {"id": credential_id})).first()
        if row is None:
            return None
        return _Row(
            kind=CredentialKind(row.kind),
            client_id=row.client_id,
            access_token_enc=row.access_token_enc,
            refresh_token_enc=row.refresh_token_enc,
            access_expires_at=row.access_expires_at,
            access_issued_at=row.access_issued_at,
            refresh_started_at=row.refresh_started_at,
            needs_reauth=row.needs_reauth,
        )

    def _usable_stored(self, row: _Row, *, rejected: str | None) -> AccessToken | None:
        if row.access_expires_at is None or row.access_token_enc is None:
            return None
        expires_at = _epoch(row.access_expires_at)
        issued_at = _epoch(row.access_issued_at) if row.access_issued_at else expires_at - 5400
        if not AccessToken("", expires_at, issued_at).usable(self._margin, time.time()):
            return None
        value = self._decrypt(row.access_token_enc)
        if value is None or value == rejected:
            return None
        return AccessToken(value, expires_at, issued_at)

    def _usable_cached(self, credential_id: int) -> AccessToken | None:
        cached = self._cache.get(credential_id)
        if cached is None:
            return None
        fresh = time.monotonic() - cached.cached_at < self._settings.token_cache_seconds
        if fresh and cached.token.usable(self._margin, time.time()):
            return cached.token
        self._cache.pop(credential_id, None)
        return None

    def _recent_failure(self, credential_id: int) -> Outcome | None:
        remembered = self._failures.get(credential_id)
        if remembered is None or time.monotonic() >= remembered[1]:
            return None
        return remembered[0]

    def _remember_failure(self, credential_id: int, outcome: Outcome) -> Outcome:
        memory = (
            self._settings.token_cache_seconds
            if outcome.kind is OutcomeKind.UNAUTHORIZED
            else _FAILURE_MEMORY_SECONDS
        )
        self._failures[credential_id] = (outcome, time.monotonic() + memory)
        return outcome

    def _decrypt(self, value: bytes | None) -> str | None:
        if value is None:
            return None
        try:
            return self._vault.decrypt(value)
        except (InvalidToken, VaultUnavailable):
            # A key was dropped from ENCRYPTION_KEY too early: treat as no token.
            log.warning("token.undecryptable")
            return None

    async def _advisory_lock(self, conn: AsyncConnection, credential_id: int) -> bool:
        deadline = time.monotonic() + self._settings.procore_timeout_seconds + 10
        while True:
            got = (
                await conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"),
                    {"ns": _LOCK_NAMESPACE, "key": credential_id % 2**31},
                )
            ).scalar_one()
            await conn.commit()
            if got:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_LOCK_POLL_SECONDS)

    async def _advisory_unlock(self, conn: AsyncConnection, credential_id: int) -> None:
        try:
            await conn.rollback()
            await conn.execute(
                text("SELECT pg_advisory_unlock(:ns, :key)"),
                {"ns": _LOCK_NAMESPACE, "key": credential_id % 2**31},
            )
            await conn.commit()
        except asyncio.CancelledError:
            await conn.invalidate()
            raise
        except Exception as exc:
            # A session lock must never go back to the pool: drop the connection instead.
            log.warning(
                "token.unlock_failed", credential_id=credential_id, error=type(exc).__name__
            )
            await conn.invalidate()


async def post_token(
    http: httpx.AsyncClient,
    settings: Settings,
    form: Mapping[str, str],
    credential_id: int | None,
) -> tuple[int | None, bytes, CallRecord]:
    """POST the token endpoint. Returns (status or None, body or error text, audit record)."""
    return await post_login(http, settings, TOKEN_PATH, Purpose.TOKEN, form, credential_id)


async def post_login(
    http: httpx.AsyncClient,
    settings: Settings,
    path: str,
    purpose: str,
    form: Mapping[str, str],
    credential_id: int | None,
) -> tuple[int | None, bytes, CallRecord]:
    """POST a form to Procore's login service (PROCORE_LOGIN_BASE): the token and revoke
    endpoints. Returns (status or None, body or error text, audit record)."""
    url = settings.procore_login_base.rstrip("/") + path
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        answer = await http.post(
            url,
            data=dict(form),
            headers={"Accept": "application/json"},
            timeout=settings.procore_timeout_seconds,
        )
        status, body = answer.status_code, answer.content
    except httpx.TimeoutException:
        error = "timeout"
        body = error.encode()
    except httpx.TransportError as exc:
        error = f"connection error: {type(exc).__name__}"
        body = error.encode()
    metrics.procore_call(status, purpose)
    call = CallRecord(
        purpose=purpose,
        method="POST",
        path=path,
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000),
        credential_id=credential_id,
        error=error,
    )
    return status, body, call


# -- storing a connected user's credential (Connect-to-Procore) ----------------------------

_FIND_USER_CREDENTIAL = text(
    """
    SELECT id FROM credentials
    WHERE kind = 'authorization_code' AND client_id = :client_id AND procore_user_id = :user_id
    ORDER BY id LIMIT 1
    FOR UPDATE
    """
)

_INSERT_USER_CREDENTIAL = text(
    """
    INSERT INTO credentials (kind, label, client_id, procore_user_id, procore_login)
    VALUES ('authorization_code', :label, :client_id, :user_id, :login)
    RETURNING id
    """
)

_UPDATE_USER = text(
    """
    UPDATE credentials SET label = :label, procore_login = :login, updated_at = now()
    WHERE id = :id
    """
)


@dataclass(frozen=True, slots=True)
class Retired:
    """The tokens a credential held until they were cleared from it, to be revoked at Procore
    once the transaction that cleared them has committed (app.procore.revocation)."""

    credential_id: int
    tokens: tuple[str, ...] = field(repr=False)


_TAKE_TOKENS = text(
    """
    SELECT access_token_enc, refresh_token_enc FROM credentials
    WHERE id = :id AND kind = 'authorization_code'
    FOR UPDATE
    """
)

_CLEAR_TOKENS = text(
    """
    UPDATE credentials SET access_token_enc = NULL, access_expires_at = NULL,
        access_issued_at = NULL, refresh_token_enc = NULL, refresh_started_at = NULL,
        needs_reauth = true, updated_at = now()
    WHERE id = :id
    """
)


async def retire_tokens(session: AsyncSession, vault: Vault, credential_id: int) -> Retired:
    """Take a connected user's tokens out of its credential (which then needs
    re-authorization) and return them. The caller commits, then revokes them."""
    row = (await session.execute(_TAKE_TOKENS, {"id": credential_id})).first()
    if row is None:
        return Retired(credential_id, ())
    await session.execute(_CLEAR_TOKENS, {"id": credential_id})
    tokens: list[str] = []
    for sealed in (row.access_token_enc, row.refresh_token_enc):
        if sealed is None:
            continue
        try:
            tokens.append(vault.decrypt(sealed))
        except (InvalidToken, VaultUnavailable):
            log.warning("token.undecryptable", credential_id=credential_id)
    return Retired(credential_id, tuple(tokens))


async def save_user_credential(
    session: AsyncSession,
    vault: Vault,
    *,
    client_id: str,
    grant: TokenGrant,
    issued_at: float,
    user_id: int | None,
    login: str | None,
    label: str,
) -> tuple[int, Retired | None]:
    """Store (or re-authorize) the credential of a connected user. Returns its id and, when
    it re-authorized an existing credential, the tokens the new grant replaced."""
    existing = None
    if user_id is not None:
        existing = (
            await session.execute(
                _FIND_USER_CREDENTIAL, {"client_id": client_id, "user_id": user_id}
            )
        ).scalar_one_or_none()
    replaced: Retired | None = None
    if existing is None:
        credential_id = int(
            (
                await session.execute(
                    _INSERT_USER_CREDENTIAL,
                    {"label": label, "client_id": client_id, "user_id": user_id, "login": login},
                )
            ).scalar_one()
        )
    else:
        credential_id = int(existing)
        await session.execute(_UPDATE_USER, {"id": credential_id, "label": label, "login": login})
        replaced = await retire_tokens(session, vault, credential_id)
        # A login service that hands out a still-valid token again must not see it revoked.
        fresh = {grant.access_token, grant.refresh_token}
        replaced = Retired(credential_id, tuple(t for t in replaced.tokens if t not in fresh))
    await session.execute(
        _STORE_GRANT,
        {
            "id": credential_id,
            "access": vault.encrypt(grant.access_token),
            "expires_at": _moment(issued_at + grant.expires_in),
            "issued_at": _moment(issued_at),
            "refresh": (
                None if grant.refresh_token is None else vault.encrypt(grant.refresh_token)
            ),
        },
    )
    return credential_id, replaced
