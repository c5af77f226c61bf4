"""Tokens: minted once, renewed once across processes, refresh tokens never reused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.events.service import process_batch
from app.models import CredentialKind
from app.procore.answers import Outcome, OutcomeKind
from app.procore.tokens import AccessToken, CredentialRef
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import connect_user, running_worker, sim_stats, wait_for


async def new_rfis(sim: httpx.AsyncClient, count: int, company_id: int = 31) -> list[int]:
    answer = await sim.post(
        "/_sim/events",
        json={
            "company_id": company_id,
            "project_id": 900,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": count,
        },
    )
    answer.raise_for_status()
    ids: list[int] = answer.json()["resource_ids"]
    return ids


async def expire_stored_tokens(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE credentials SET access_expires_at = now() - interval '1 minute'")
        )


async def token_calls(sim: httpx.AsyncClient) -> dict[str, Any]:
    stats = await sim_stats(sim)
    return {
        "grants": stats["token_grants"],
        "refreshes": stats["refreshes"],
        "invalid_grant": stats["invalid_grant"],
    }


async def test_one_mint_serves_every_call_and_is_encrypted(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    credential, recorded = await prt.procore.tokens.credential_for(31)
    assert credential is not None
    assert credential.kind is CredentialKind.CLIENT_CREDENTIALS
    assert recorded is False
    tokens = await asyncio.gather(*(prt.procore.tokens.access_token(credential) for _ in range(20)))
    assert all(isinstance(t, AccessToken) for t in tokens)
    assert len({t.value for t in tokens if isinstance(t, AccessToken)}) == 1
    assert (await token_calls(sim))["grants"]["client_credentials"] == 1
    async with prt.sessions() as session:
        stored = (
            await session.execute(text("SELECT access_token_enc FROM credentials"))
        ).scalar_one()
    token = tokens[0]
    assert isinstance(token, AccessToken)
    assert token.value.encode() not in stored
    assert prt.vault.decrypt(stored) == token.value
    assert "value" not in repr(token)


async def test_expired_token_mid_run_is_reminted_once(prt: Runtime, sim: httpx.AsyncClient) -> None:
    first = await new_rfis(sim, 5)
    await store_events(prt, [Spec("RFIs", rid) for rid in first])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
        (await sim.post("/_sim/tokens/expire")).raise_for_status()
        second = await new_rfis(sim, 5)
        await store_events(prt, [Spec("RFIs", rid) for rid in second])
        await wait_for(lambda: all_final(prt), timeout=20)
    assert await statuses(prt) == {"done": 10}
    assert (await token_calls(sim))["grants"]["client_credentials"] == 2


@pytest.mark.parametrize("expiry", ["refused-by-procore", "expired-in-store"])
@pytest.mark.parametrize("kind", ["client_credentials", "authorization_code"])
async def test_fifty_concurrent_jobs_in_three_processes_renew_once(
    prt: Runtime,
    sim: httpx.AsyncClient,
    pipeline_settings: Callable[..., Settings],
    kind: str,
    expiry: str,
) -> None:
    if kind == "authorization_code":
        assert (await connect_user(prt, sim, 31)).status_code == 200
    rids = await new_rfis(sim, 51)
    # Every "process" has its own engine, token cache and locks.
    processes = [open_runtime(pipeline_settings(), name=f"p{n}") for n in range(3)]
    try:
        [warmup] = await store_events(prt, [Spec("RFIs", rids[0])])
        assert await process_batch(processes[0], [warmup]) == 1
        for p in processes[1:]:  # every process holds the (soon stale) token in memory
            credential, _ = await p.procore.tokens.credential_for(31)
            assert credential is not None
            assert isinstance(await p.procore.tokens.access_token(credential), AccessToken)
        before = await token_calls(sim)
        if expiry == "refused-by-procore":
            (await sim.post("/_sim/tokens/expire")).raise_for_status()
        else:
            await expire_stored_tokens(prt)
            for p in processes:
                p.procore.tokens._cache.clear()
        ids = await store_events(prt, [Spec("RFIs", rid) for rid in rids[1:]])
        done = await asyncio.gather(
            *(process_batch(processes[n % 3], [event]) for n, event in enumerate(ids))
        )
        assert sum(done) == 50
        after = await token_calls(sim)
    finally:
        for p in processes:
            await p.close()
    if kind == "client_credentials":
        assert after["grants"]["client_credentials"] - before["grants"]["client_credentials"] == 1
    else:
        assert after["refreshes"] - before["refreshes"] == 1
    assert after["invalid_grant"] == 0
    assert await statuses(prt) == {"done": 51}


async def _user_credential(prt: Runtime, sim: httpx.AsyncClient) -> CredentialRef:
    assert (await connect_user(prt, sim, 31)).status_code == 200
    credential, recorded = await prt.procore.tokens.credential_for(31)
    assert credential is not None
    assert credential.kind is CredentialKind.AUTHORIZATION_CODE
    assert recorded
    return credential


async def test_a_lost_refresh_is_never_retried(prt: Runtime, sim: httpx.AsyncClient) -> None:
    credential = await _user_credential(prt, sim)
    # A refresh was sent and its answer never committed (the process died meanwhile).
    async with prt.sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE credentials SET refresh_started_at = now(),"
                " access_expires_at = now() - interval '1 minute'"
            )
        )
    before = await token_calls(sim)
    outcome = await prt.procore.tokens.access_token(credential)
    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.UNAUTHORIZED
    assert "re-authoriz" in outcome.message
    assert (await token_calls(sim))["refreshes"] == before["refreshes"]
    async with prt.sessions() as session:
        row = (
            await session.execute(text("SELECT needs_reauth, refresh_started_at FROM credentials"))
        ).one()
    assert row.needs_reauth is True
    # Re-authorizing (connecting again) clears it.
    assert (await connect_user(prt, sim, 31)).status_code == 200
    prt.procore.tokens.forget(credential.id)
    assert isinstance(await prt.procore.tokens.access_token(credential), AccessToken)


async def test_a_refresh_whose_answer_times_out_needs_reauth(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = open_runtime(pipeline_settings(procore_timeout_seconds=0.3), name="t")
    try:
        credential = await _user_credential(runtime, sim)
        await expire_stored_tokens(runtime)
        runtime.procore.tokens.forget(credential.id)
        faults = {"latency_ms": 1000, "include_oauth": True}
        (await sim.put("/_sim/faults", json=faults)).raise_for_status()
        outcome = await runtime.procore.tokens.access_token(credential)
        assert isinstance(outcome, Outcome)
        assert outcome.kind is OutcomeKind.UNAUTHORIZED
        (await sim.delete("/_sim/faults")).raise_for_status()
        # Not retried: Procore may have consumed the refresh token before the answer was lost.
        # (The simulator delays before it reads the request, so it never saw this one.)
        before = await token_calls(sim)
        runtime.procore.tokens.forget(credential.id)
        again = await runtime.procore.tokens.access_token(credential)
        assert isinstance(again, Outcome)
        assert "re-authoriz" in again.message
        after = await token_calls(sim)
        assert after["refreshes"] == before["refreshes"]
        assert after["invalid_grant"] == 0
        async with runtime.sessions() as session:
            flagged = (
                await session.execute(text("SELECT needs_reauth FROM credentials"))
            ).scalar_one()
        assert flagged is True
    finally:
        await runtime.close()
