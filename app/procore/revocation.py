"""Revoking a connected user's tokens at Procore when its credential is replaced or removed.

Procore: "it is imperative that you implement a solution within your application or
integration for revoking access tokens for Procore user accounts that become inactive or are
otherwise terminated"; `POST /oauth/revoke` with `token`, `client_id`, `client_secret`
"revokes both the Access Token and Refresh Token", and answers 200 for an unknown token too
(`oauth/oauth_endpoints.md`, "Revoke Token"; OpenAPI OauthRevokePost).

A credential is replaced when its user authorizes again (the new grant replaces the old pair)
or when every company it served is connected again by another login (it serves nothing any
more), and removed by an operator (`DELETE /admin/credentials/{id}`). In two steps, so that no
transaction is held across an HTTP call:

1. In the transaction that replaces or removes it, `tokens.retire_tokens` takes its tokens out
   of the row (the service never presents them again).
2. After that commit, `revoke` posts each token to Procore: best effort, every call in the
   call audit (`procore_calls`, purpose `revoke`, with its status or error), the outcome
   returned for the caller to report. No token reaches a log line.

If the process dies between the two, the tokens are gone from the database but not revoked at
Procore; the access token expires within 90 minutes, the refresh token is known to nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import Vault
from app.db import SessionFactory
from app.logs import get_logger
from app.procore.calls import CallRecord, Purpose, record_calls
from app.procore.tokens import Retired, post_login, retire_tokens
from app.settings import Settings

log = get_logger(__name__)

REVOKE_PATH = "/oauth/revoke"


@dataclass(frozen=True, slots=True)
class Revocation:
    """What Procore answered when a credential's tokens were revoked."""

    credential_id: int
    # One per token sent: the HTTP status, or None when no answer came.
    statuses: tuple[int | None, ...] = field(default=())

    @property
    def outcome(self) -> str:
        """`revoked` (every token acknowledged), `failed` (some were not), `nothing` (the
        credential held no token)."""
        if not self.statuses:
            return "nothing"
        return "revoked" if all(s == 200 for s in self.statuses) else "failed"

    def detail(self) -> dict[str, object]:
        return {"revoke": self.outcome, "statuses": list(self.statuses)}


_SERVING = text(
    """
    SELECT DISTINCT cc.credential_id FROM company_credentials cc
    JOIN credentials c ON c.id = cc.credential_id
    WHERE cc.company_id = ANY(CAST(:company_ids AS bigint[])) AND cc.credential_id <> :keep
      AND c.kind = 'authorization_code'
    """
)

_SERVING_NOTHING = text(
    """
    SELECT c.id FROM credentials c
    WHERE c.id = ANY(CAST(:ids AS bigint[]))
      AND NOT EXISTS (SELECT 1 FROM company_credentials cc WHERE cc.credential_id = c.id)
    ORDER BY c.id
    """
)


async def serving(session: AsyncSession, company_ids: Sequence[int], *, keep: int) -> list[int]:
    """The user credentials other than `keep` serving any of `company_ids`: read before those
    companies are handed to `keep`, to find the ones left serving nothing afterwards."""
    found = await session.execute(_SERVING, {"company_ids": list(company_ids), "keep": keep})
    return [int(i) for i in found.scalars()]


async def retire_orphans(
    session: AsyncSession, vault: Vault, credential_ids: Iterable[int]
) -> list[Retired]:
    """Retire the tokens of those `credential_ids` that now serve no company."""
    ids = list(credential_ids)
    if not ids:
        return []
    orphans = (await session.execute(_SERVING_NOTHING, {"ids": ids})).scalars()
    return [await retire_tokens(session, vault, int(i)) for i in orphans]


async def revoke(
    http: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    retired: Iterable[Retired],
) -> list[Revocation]:
    """Revoke every retired token at Procore (after the retiring transaction committed)."""
    done: list[Revocation] = []
    calls: list[CallRecord] = []
    for credential in retired:
        statuses: list[int | None] = []
        for token in credential.tokens:
            form = {
                "token": token,
                "client_id": settings.procore_client_id,
                "client_secret": settings.procore_client_secret.get_secret_value(),
            }
            status, _, call = await post_login(
                http, settings, REVOKE_PATH, Purpose.REVOKE, form, credential.credential_id
            )
            statuses.append(status)
            calls.append(call)
        revocation = Revocation(credential.credential_id, tuple(statuses))
        if revocation.outcome == "failed":
            log.warning(
                "credential.revoke_failed",
                credential_id=credential.credential_id,
                statuses=revocation.statuses,
            )
        else:
            log.info("credential.revoked", credential_id=credential.credential_id)
        done.append(revocation)
    if calls:
        async with sessions() as session, session.begin():
            await record_calls(session, calls)
    return done
