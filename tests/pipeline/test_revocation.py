"""A connected user's tokens are revoked at Procore when its credential is replaced or removed.

`oauth/oauth_endpoints.md`, "Revoke Token": "it is imperative that you implement a solution
within your application or integration for revoking access tokens for Procore user accounts
that become inactive or are otherwise terminated"; `POST /oauth/revoke` "revokes both the
Access Token and Refresh Token" (OpenAPI OauthRevokePost). Checked at the simulator: the old
refresh token no longer refreshes, the old access token no longer reads.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.connect import service as connect_service
from app.procore import revocation
from app.procore.tokens import TokenGrant, save_user_credential
from app.runtime import Runtime
from tests.conftest import ADMIN_TOKEN
from tests.harness import api_client, connect_user
from tests.simulator.procore import CLIENT, refresh, user_tokens

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _tokens_of(runtime: Runtime, credential_id: int) -> tuple[str | None, str | None]:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                text("SELECT access_token_enc, refresh_token_enc FROM credentials WHERE id = :i"),
                {"i": credential_id},
            )
        ).one()
    return tuple(  # type: ignore[return-value]
        None if sealed is None else runtime.vault.decrypt(sealed)
        for sealed in (row.access_token_enc, row.refresh_token_enc)
    )


async def _user_credential(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        found: int = (
            await session.execute(
                text("SELECT id FROM credentials WHERE kind = 'authorization_code'")
            )
        ).scalar_one()
    return found


async def _revoke_calls(runtime: Runtime) -> list[Any]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT credential_id, method, path, status, error FROM procore_calls"
                " WHERE purpose = 'revoke' ORDER BY id"
            )
        )
        return list(rows)


async def _alive_at_procore(sim: httpx.AsyncClient, access: str, refresh_token: str) -> bool:
    """Both tokens of a pair still work at the simulator (a refresh rotates the pair)."""
    me = await sim.get("/rest/v1.0/me", headers={"Authorization": f"Bearer {access}"})
    if me.status_code != 200:
        return False
    return (await refresh(sim, refresh_token)).status_code == 200


async def _other_login(
    runtime: Runtime, sim: httpx.AsyncClient, *, user_id: int, companies: list[int]
) -> tuple[int, dict[str, Any]]:
    """A credential of another Procore login serving `companies`, holding a live pair."""
    pair = await user_tokens(sim)
    grant = TokenGrant(pair["access_token"], pair["refresh_token"], float(pair["expires_in"]))
    async with runtime.sessions() as session, session.begin():
        credential_id, replaced = await save_user_credential(
            session,
            runtime.vault,
            client_id=CLIENT["client_id"],
            grant=grant,
            issued_at=time.time(),
            user_id=user_id,
            login=f"user{user_id}@example.com",
            label=f"connected user user{user_id}@example.com",
        )
        assert replaced is None
        for company_id in companies:
            await session.execute(
                text("INSERT INTO company_credentials (company_id, credential_id) VALUES (:c, :i)"),
                {"c": company_id, "i": credential_id},
            )
    return credential_id, pair


class _Recorder:
    """Stands in for a module's logger: keeps every event and its fields."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((event, fields))

        return record


async def test_reauthorizing_revokes_the_pair_it_replaces(
    prt: Runtime, sim: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = _Recorder()
    monkeypatch.setattr(revocation, "log", logged)
    monkeypatch.setattr(connect_service, "log", logged)
    assert (await connect_user(prt, sim)).status_code == 200
    credential_id = await _user_credential(prt)
    old_access, old_refresh = await _tokens_of(prt, credential_id)
    assert old_access is not None
    assert old_refresh is not None

    again = await connect_user(prt, sim)

    assert again.status_code == 200, again.text
    assert await _user_credential(prt) == credential_id  # the same credential, re-authorized
    new_access, new_refresh = await _tokens_of(prt, credential_id)
    assert {new_access, new_refresh}.isdisjoint({old_access, old_refresh})
    me = await sim.get("/rest/v1.0/me", headers={"Authorization": f"Bearer {old_access}"})
    assert me.status_code == 401
    assert me.json() == {"errors": "The access token was revoked"}
    assert (await refresh(sim, old_refresh)).json()["error"] == "invalid_grant"
    assert new_access is not None
    assert new_refresh is not None
    assert await _alive_at_procore(sim, new_access, new_refresh)
    calls = await _revoke_calls(prt)
    assert [(c.credential_id, c.method, c.path, c.status) for c in calls] == [
        (credential_id, "POST", "/oauth/revoke", 200),
        (credential_id, "POST", "/oauth/revoke", 200),
    ]
    assert ("credential.revoked", {"credential_id": credential_id}) in logged.lines
    for token in (old_access, old_refresh, new_access, new_refresh):
        assert token not in repr(logged.lines)


async def test_a_login_replaced_in_every_company_it_served_is_revoked(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    """Companies 31 and 32 connected again by another login: the credential that served only
    them is retired and revoked; one that still serves another company is left alone."""
    replaced_id, replaced_pair = await _other_login(prt, sim, user_id=55, companies=[31, 32])
    kept_id, kept_pair = await _other_login(prt, sim, user_id=56, companies=[33, 4242])

    # An operator's link (no company): user 77's login serves every company it reaches.
    assert (await connect_user(prt, sim, company_id=None)).status_code == 200  # 31, 32, 33

    assert await _tokens_of(prt, replaced_id) == (None, None)
    me = await sim.get(
        "/rest/v1.0/me", headers={"Authorization": f"Bearer {replaced_pair['access_token']}"}
    )
    assert me.status_code == 401
    assert (await refresh(sim, replaced_pair["refresh_token"])).status_code == 400
    assert await _tokens_of(prt, kept_id) == (
        kept_pair["access_token"],
        kept_pair["refresh_token"],
    )
    assert await _alive_at_procore(sim, kept_pair["access_token"], kept_pair["refresh_token"])
    async with prt.sessions() as session:
        needs_reauth = (
            await session.execute(
                text("SELECT needs_reauth FROM credentials WHERE id = :i"), {"i": replaced_id}
            )
        ).scalar_one()
    assert needs_reauth is True
    assert {c.credential_id for c in await _revoke_calls(prt)} == {replaced_id}


async def test_removing_a_credential_revokes_its_tokens_and_falls_back(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    assert (await connect_user(prt, sim, company_id=None)).status_code == 200
    credential_id = await _user_credential(prt)
    access, refresh_token = await _tokens_of(prt, credential_id)
    assert access is not None
    assert refresh_token is not None

    async with api_client(prt.settings) as api:
        listed = await api.get("/admin/credentials", headers=ADMIN)
        removed = await api.delete(f"/admin/credentials/{credential_id}", headers=ADMIN)
        after = await api.get("/admin/credentials", headers=ADMIN)
        actions = (await api.get("/admin/actions", headers=ADMIN)).json()["items"]

    assert listed.status_code == 200
    [before] = [c for c in listed.json() if c["id"] == credential_id]
    assert before["companies"] == [31, 32, 33]
    assert before["holds_tokens"] is True
    assert access not in listed.text
    assert refresh_token not in listed.text
    assert removed.status_code == 200, removed.text
    assert removed.json() == {
        "id": credential_id,
        "companies": [31, 32, 33],
        "revoke": "revoked",
        "statuses": [200, 200],
    }
    [now] = [c for c in after.json() if c["id"] == credential_id]
    assert now["companies"] == []
    assert now["holds_tokens"] is False
    assert now["needs_reauth"] is True
    assert not await _alive_at_procore(sim, access, refresh_token)
    assert (await refresh(sim, refresh_token)).json()["error"] == "invalid_grant"
    by_action = {a["action"]: a for a in actions}
    assert by_action["credential_remove"]["target"] == f"credential:{credential_id}"
    assert by_action["credential_remove"]["detail"] == {"companies": [31, 32, 33], "tokens": 2}
    assert by_action["credential_revoke"]["detail"] == {"revoke": "revoked", "statuses": [200, 200]}
    assert by_action["credential_remove"]["actor"].startswith("admin:")
    # The companies are served by the app's service account again.
    token_service = prt.procore.tokens
    token_service.forget_company(31)
    served, mapped = await token_service.credential_for(31)
    assert mapped is False
    assert served is not None
    assert served.id != credential_id


async def test_a_failed_revoke_is_recorded_and_the_removal_still_happens(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    assert (await connect_user(prt, sim)).status_code == 200
    credential_id = await _user_credential(prt)
    faults = {"error_rate": 1.0, "error_status": 500, "include_oauth": True}
    (await sim.put("/_sim/faults", json=faults)).raise_for_status()

    async with api_client(prt.settings) as api:
        removed = await api.delete(f"/admin/credentials/{credential_id}", headers=ADMIN)
        actions = (await api.get("/admin/actions", headers=ADMIN)).json()["items"]

    assert removed.status_code == 200, removed.text
    assert removed.json()["revoke"] == "failed"
    assert removed.json()["statuses"] == [500, 500]
    assert await _tokens_of(prt, credential_id) == (None, None)
    assert {a["action"]: a["detail"] for a in actions}["credential_revoke"] == {
        "revoke": "failed",
        "statuses": [500, 500],
    }
    assert [c.status for c in await _revoke_calls(prt)] == [500, 500]


async def test_removal_refusals_change_nothing(prt: Runtime, sim: httpx.AsyncClient) -> None:
    assert (await connect_user(prt, sim)).status_code == 200
    async with api_client(prt.settings) as api:
        await api.get("/admin/credentials", headers=ADMIN)
        app_id = await prt.procore.tokens.credential_for(999)
        assert app_id[0] is not None
        service_account = await api.delete(f"/admin/credentials/{app_id[0].id}", headers=ADMIN)
        unknown = await api.delete("/admin/credentials/987654", headers=ADMIN)
        invalid = await api.delete("/admin/credentials/0", headers=ADMIN)
        unauthenticated = await api.delete(f"/admin/credentials/{app_id[0].id}")
        listed = (await api.get("/admin/credentials", headers=ADMIN)).json()
        actions = (await api.get("/admin/actions", headers=ADMIN)).json()["items"]

    assert service_account.status_code == 409
    assert "PROCORE_CLIENT_ID" in service_account.json()["detail"]
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "credential 987654 not found"}
    assert invalid.status_code == 422
    assert unauthenticated.status_code == 401
    assert {c["kind"]: c["holds_tokens"] for c in listed}["authorization_code"] is True
    assert not [a for a in actions if a["action"].startswith("credential_")]
    assert await _revoke_calls(prt) == []
