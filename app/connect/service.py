"""Connect to Procore: the authorization-code flow that attaches a user credential.

The flow starts only from a link the service issued (`issue_connect_link`, for the admin API,
the CLI or the setup page of a known company): the link carries a random single-use `state`
of which only the SHA-256 is stored (`oauth_states`). Opening the link binds the state to the
browser (a cookie) and redirects to Procore's authorize page; the callback accepts the code
only with that same state from that same browser, consumes the state, exchanges the code,
stores the credential (tokens encrypted), and lists which companies it reaches
(`GET /rest/v1.0/companies`).

What the credential then serves (`company_credentials`: a company is served by the credential
that last proved access to it) is decided by who issued the link, not by whoever completes it:

- A link for company X attaches the credential to X only. The other companies the login
  reaches are reported (on the page, in the log) and left alone: completing a link for X must
  never re-point companies Y and Z to a stranger's login.
- A link without a company can only come from an operator (admin API, CLI): the operator asks
  for every company the login reaches, and gets them.

Links are minted at most CONNECT_LINKS_PER_HOUR times per company (the setup page mints them
for anyone holding a signed setup link), and expired ones are pruned as new ones are minted. A
code exchange that fails gives the link back, so it stays usable as the page says. Tokens a
connect replaces (the user's previous grant, or a user credential left serving no company)
are revoked at Procore (app.procore.revocation).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import Vault
from app.db import SessionFactory
from app.gates import service as gates
from app.logs import get_logger
from app.procore import paths, revocation
from app.procore.answers import OutcomeKind
from app.procore.calls import CallRecord, record_calls
from app.procore.client import ProcoreClient
from app.procore.pages import has_next_page
from app.procore.tokens import parse_grant, post_token, save_user_credential
from app.settings import Settings

log = get_logger(__name__)

CONNECT_PATH = "/connect/procore"
_COMPANIES_PER_PAGE = 100
_MAX_COMPANY_PAGES = 20
CALLBACK_PATH = "/connect/procore/callback"

_ISSUE = text(
    """
    INSERT INTO oauth_states (state_hash, company_id, issued_by, expires_at)
    VALUES (:state_hash, :company_id, :issued_by, :expires_at)
    """
)

_LIVE = text(
    """
    SELECT company_id FROM oauth_states
    WHERE state_hash = :state_hash AND used_at IS NULL AND expires_at > now()
    """
)

_RECENT = text(
    """
    SELECT count(*) FROM oauth_states
    WHERE company_id IS NOT DISTINCT FROM :company_id AND created_at > now() - interval '1 hour'
    """
)

# Kept a day past expiry, so that the page can still say "expired" rather than "unknown".
_PRUNE = text("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'")

# A failed code exchange: the link is usable again (until it expires).
_GIVE_BACK = text(
    "UPDATE oauth_states SET used_at = NULL WHERE state_hash = :state_hash AND expires_at > now()"
)

_CONSUME = text(
    """
    UPDATE oauth_states SET used_at = now()
    WHERE state_hash = :state_hash AND used_at IS NULL AND expires_at > now()
    RETURNING company_id
    """
)

_PROVE_COMPANY = text(
    """
    INSERT INTO company_credentials (company_id, credential_id, company_name, proved_at)
    VALUES (:company_id, :credential_id, :company_name, now())
    ON CONFLICT (company_id) DO UPDATE SET
        credential_id = excluded.credential_id,
        company_name = excluded.company_name,
        proved_at = excluded.proved_at
    """
)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def authorize_url(settings: Settings, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.procore_client_id,
            "redirect_uri": redirect_uri(settings),
            "state": state,
        }
    )
    return f"{settings.procore_login_base.rstrip('/')}/oauth/authorize?{query}"


class TooManyLinks(Exception):
    """CONNECT_LINKS_PER_HOUR links were already issued for this company in the last hour."""


async def issue_connect_link(
    session: AsyncSession, settings: Settings, company_id: int | None, *, issued_by: str = "admin"
) -> str:
    """A Connect-to-Procore link, valid for CONNECT_LINK_TTL_SECONDS and usable once.

    The caller commits. `issued_by` says who asked (an admin token fingerprint, "cli", ...).
    Raises TooManyLinks past CONNECT_LINKS_PER_HOUR links for the company.
    """
    await session.execute(_PRUNE)
    recent = (await session.execute(_RECENT, {"company_id": company_id})).scalar_one()
    if recent >= settings.connect_links_per_hour:
        raise TooManyLinks(
            f"{recent} connect links were issued for this company in the last hour; "
            "use one of them or wait"
        )
    state = secrets.token_urlsafe(32)
    await session.execute(
        _ISSUE,
        {
            "state_hash": state_hash(state),
            "company_id": company_id,
            "issued_by": issued_by[:64],
            "expires_at": datetime.now(UTC) + timedelta(seconds=settings.connect_link_ttl_seconds),
        },
    )
    return f"{settings.public_base_url.rstrip('/')}{CONNECT_PATH}?{urlencode({'state': state})}"


async def link_is_live(session: AsyncSession, state: str) -> bool:
    found = await session.execute(_LIVE, {"state_hash": state_hash(state)})
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class Connected:
    credential_id: int
    login: str | None
    # Every company the login reaches, and those it now serves (the link's company, or all
    # of them for an operator's link without a company).
    companies: list[tuple[int, str | None]]
    attached: list[int]
    # The company the link was issued for, if the credential does not reach it.
    missing_company: int | None = None

    @property
    def not_attached(self) -> list[tuple[int, str | None]]:
        return [(c, name) for c, name in self.companies if c not in self.attached]


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    status: int
    reason: str
    # Whether the link can be opened again (the state was given back).
    link_usable: bool = False


class CredentialDeps(Protocol):
    """What attaching or removing a credential needs: Postgres, the vault for its tokens, the
    plain HTTP client for Procore's token and revoke endpoints, the Procore client (its calls
    with the new token, and its token cache to forget) and the settings. The edges pass the
    process's Runtime, which has all of these (mypy checks it)."""

    sessions: SessionFactory
    vault: Vault
    http: httpx.AsyncClient
    procore: ProcoreClient
    settings: Settings


async def complete(deps: CredentialDeps, *, state: str, code: str) -> Connected | ConnectFailed:
    """The callback's work, once the browser's state matched: consume the state, exchange
    the code, store the credential, record the companies it reaches."""
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
        consumed = (await session.execute(_CONSUME, {"state_hash": state_hash(state)})).first()
    if consumed is None:
        return ConnectFailed(400, "this connect link was already used or has expired")
    link_company: int | None = consumed.company_id

    calls: list[CallRecord] = []
    issued_at = time.time()
    status, body, call = await post_token(
        deps.http,
        settings,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(settings),
            "client_id": settings.procore_client_id,
            "client_secret": settings.procore_client_secret.get_secret_value(),
        },
        None,
    )
    calls.append(call)
    grant = parse_grant(body) if status == 200 else None
    if grant is None:
        async with deps.sessions() as session, session.begin():
            await record_calls(session, calls)
            given_back = await session.execute(_GIVE_BACK, {"state_hash": state_hash(state)})
        usable = bool(getattr(given_back, "rowcount", 0))
        log.warning("connect.exchange_failed", status=status, link_usable=usable)
        return ConnectFailed(
            502, f"Procore refused the authorization code (status {status})", link_usable=usable
        )

    client = deps.procore
    me = await client.get_as(
        paths.ME, token=grant.access_token, company_id=link_company, calls=calls
    )
    profile = _object(me.body) if me.outcome.kind is OutcomeKind.OK else {}
    companies: list[tuple[int, str | None]] = []
    for page in range(1, _MAX_COMPANY_PAGES + 1):
        listed = await client.get_as(
            f"{paths.COMPANIES}?page={page}&per_page={_COMPANIES_PER_PAGE}",
            token=grant.access_token,
            company_id=link_company,
            calls=calls,
        )
        found = _companies(listed.body) if listed.outcome.kind is OutcomeKind.OK else []
        companies.extend(found)
        if listed.outcome.kind is not OutcomeKind.OK or not has_next_page(
            listed.headers, page, _COMPANIES_PER_PAGE, len(found)
        ):
            break

    reached = {c for c, _ in companies}
    if link_company is None:
        attached = sorted(reached)  # an operator's link: every company the login reaches
    else:
        attached = [link_company] if link_company in reached else []
    user_id = profile.get("id")
    login = profile.get("login")
    async with deps.sessions() as session, session.begin():
        credential_id, replaced = await save_user_credential(
            session,
            deps.vault,
            client_id=settings.procore_client_id,
            grant=grant,
            issued_at=issued_at,
            user_id=user_id if isinstance(user_id, int) else None,
            login=login if isinstance(login, str) else None,
            label=f"connected user {login}" if isinstance(login, str) else "connected user",
        )
        # Only the attached companies change hands: the credentials they leave are checked.
        displaced = await revocation.serving(session, attached, keep=credential_id)
        for company_id, name in companies:
            if company_id not in attached:
                continue
            await session.execute(
                _PROVE_COMPANY,
                {"company_id": company_id, "credential_id": credential_id, "company_name": name},
            )
        retired = await revocation.retire_orphans(session, deps.vault, displaced)
        if replaced is not None:
            retired.append(replaced)
        await gates.connected(session, credential_id=credential_id, company_ids=attached)
        await record_calls(session, [replace(c, credential_id=credential_id) for c in calls])
    await revocation.revoke(deps.http, settings, deps.sessions, retired)
    for old in retired:
        deps.procore.tokens.forget(old.credential_id)
    deps.procore.tokens.forget(credential_id)
    for company_id in attached:
        deps.procore.tokens.forget_company(company_id)
    missing = link_company if link_company is not None and link_company not in reached else None
    log.info(
        "connect.connected",
        credential_id=credential_id,
        company_id=link_company,
        attached=attached,
        reached_not_attached=sorted(reached - set(attached)),
    )
    return Connected(
        credential_id, login if isinstance(login, str) else None, companies, attached, missing
    )


def _object(body: bytes) -> dict[str, Any]:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _companies(body: bytes) -> list[tuple[int, str | None]]:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if isinstance(parsed, dict):
        parsed = parsed.get("data", [])
    out: list[tuple[int, str | None]] = []
    for item in parsed if isinstance(parsed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), int | str):
            try:
                company_id = int(item["id"])
            except ValueError:
                continue
            name = item.get("name")
            out.append((company_id, name if isinstance(name, str) else None))
    return out
