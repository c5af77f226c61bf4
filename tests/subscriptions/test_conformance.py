"""Subscriptions as Procore documents its Webhooks API, end to end against the simulator.

Sources: FACTS.md §3, §7, §9; `plan_your_app/webhooks_api.md` (trigger bodies, `except`,
namespace, HTTPS, the Webhooks API tool permission, deliveries and their `filter[status]`);
OpenAPI `RestV10CompaniesGet` (the companies where the app is installed),
`RestV10WebhooksHooksHookIdTriggersBulkPost` (per-trigger results) and
`RestV10WebhooksHooksHookIdDeliveriesGet` (discarded deliveries and their events)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from app.subscriptions import service
from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY
from tests.factories import all_final
from tests.harness import api_client, running_worker, sim_calls, sim_stats, wait_for
from tests.subscriptions.conftest import free_port, serving_api, sim_webhooks
from tests.subscriptions.test_hooks_sync import expected_triggers
from tests.test_cli import run_cli

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def hooks_by_company(state: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for hook in state["hooks"]:
        found.setdefault(hook["owned_by_company_id"], []).append(hook)
    return found


async def test_a_fresh_deployment_subscribes_every_installed_company_by_itself(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """Empty database, no event, no operator: Procore sends no install event (FACTS.md §7),
    so the service account's `/companies` (no company known yet, so no Procore-Company-Id)
    is how the first companies are found, within one HOOKS_SYNC_INTERVAL_SECONDS."""
    interval = 60.0
    settings = pipeline_settings(hooks_sync_interval_seconds=interval)
    async with clean.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM company_hooks"))).scalar() == 0

    async with running_worker(settings, subscriptions=True):

        async def subscribed() -> bool:
            ours = hooks_by_company(await sim_webhooks(sim))
            return {31, 32} <= set(ours) and all(
                len(h["triggers"]) == len(expected_triggers(settings))
                for c in (31, 32)
                for h in ours[c]
            )

        await wait_for(subscribed, timeout=interval, interval=0.25)
    ours = hooks_by_company(await sim_webhooks(sim))
    # Exactly one hook each where the app is installed; none where it is not (33).
    assert sorted(ours) == [31, 32]
    for company in (31, 32):
        [hook] = ours[company]
        assert hook["namespace"] == settings.webhook_namespace
        listed = {(t["resource_name"], t["event_type"]) for t in hook["triggers"]}
        assert listed == expected_triggers(settings)
        # Nothing `except` lists: Project Vendors/Users updates ended on 2026-06-30.
        assert ("Project Vendors", "update") not in listed
        assert ("Project Users", "update") not in listed
    calls = await sim_calls(sim)
    assert calls["by_route"].get("/rest/v1.0/companies", 0) >= 1


async def test_a_multi_region_service_account_discovers_through_one_company_per_region(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """With Multiple Procore Regions a service account must send Procore-Company-Id even on
    /companies (`oauth/oauth_client_credentials.md`): discovery then asks on behalf of the
    companies of PROCORE_DISCOVERY_COMPANY_IDS, one per region."""
    (await sim.put("/_sim/switches", json={"multi_region": True})).raise_for_status()
    blind = open_runtime(pipeline_settings(), name="conformance-mpr-blind")
    try:
        assert await service.discover(blind) == []
    finally:
        await blind.close()
    seeded = open_runtime(
        pipeline_settings(procore_discovery_company_ids="31"), name="conformance-mpr-seeded"
    )
    try:
        assert await service.discover(seeded) == [31, 32]
    finally:
        await seeded.close()


async def test_a_refused_trigger_stands_alone_and_the_operator_sees_procores_answer(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    refusal = {"refused_triggers": [["RFIs", "delete"]]}
    (await sim.put("/_sim/webhooks/settings", json=refusal)).raise_for_status()
    settings = pipeline_settings()
    async with api_client(settings) as api:
        synced = (await api.post("/admin/companies/31/hooks/sync", headers=AUTH)).json()
        assert synced["ok"] is True, synced
        assert [r for r in synced["refused"] if "RFIs/delete" in r], synced["refused"]

        [hook] = (await sim_webhooks(sim))["hooks"]
        listed = {(t["resource_name"], t["event_type"]) for t in hook["triggers"]}
        assert listed == expected_triggers(settings) - {("RFIs", "delete")}

        shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        by_key = {(t["resource_name"], t["event_type"]): t for t in shown["trigger_states"]}
        refused = by_key[("RFIs", "delete")]
        assert refused["state"] == "refused"
        assert refused["status"] == 422
        assert "trigger refused" in refused["answer"]
        assert by_key[("RFIs", "create")]["state"] == "active"
        # Procore lists delete in `except` for Company Vendors: never asked, and said so.
        assert by_key[("Company Vendors", "delete")]["state"] == "not_subscribable"

        # Procore accepts it later: the next sync adds just that one.
        (await sim.put("/_sim/webhooks/settings", json={"refused_triggers": []})).raise_for_status()
        again = (await api.post("/admin/companies/31/hooks/sync", headers=AUTH)).json()
        assert again["changes"] == ["add trigger RFIs/delete"]
        assert again["refused"] == []
        shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        states = {
            (t["resource_name"], t["event_type"]): t["state"] for t in shown["trigger_states"]
        }
        assert states[("RFIs", "delete")] == "active"


async def test_cli_sync_of_an_unchanged_company_writes_nothing_and_reenables_a_disabled_hook(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings()
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "PROCORE_API_BASE": settings.procore_api_base,
        "PROCORE_LOGIN_BASE": settings.procore_login_base,
        "PROCORE_CLIENT_ID": settings.procore_client_id,
        "PROCORE_CLIENT_SECRET": settings.procore_client_secret.get_secret_value(),
        # The secrets the in-process sync derived company 31's token from.
        "WEBHOOK_AUTH_TOKENS": ",".join(t.get_secret_value() for t in settings.webhook_auth_tokens),
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "COLUMNS": "200",
        "LOG_LEVEL": "WARNING",
    }
    runtime = open_runtime(settings, name="conformance-cli-test")
    try:
        assert (await service.sync_company(runtime, 31, on_demand=True)).ok
        writes = (await sim_webhooks(sim))["writes"]
        unchanged = await asyncio.to_thread(run_cli, "hooks", "sync", "--company", "31", **env)
        assert unchanged.returncode == 0, unchanged.stderr
        # Zero writes to the Webhooks API: the masked header matched, the triggers matched.
        assert (await sim_webhooks(sim))["writes"] == writes

        [hook] = (await sim_webhooks(sim))["hooks"]
        (await sim.post(f"/_sim/webhooks/{hook['id']}/disable")).raise_for_status()
        fixed = await asyncio.to_thread(run_cli, "hooks", "sync", "--company", "31", **env)
        assert fixed.returncode == 0, fixed.stderr
        assert f"re-enable hook {hook['id']}" in fixed.stdout
        [hook] = (await sim_webhooks(sim))["hooks"]
        assert hook["status"] == "active"
        async with api_client(settings) as api:
            shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        assert shown["hook_status"] == "active"
        assert shown["reenabled"] == 1
        assert shown["reenabled_at"] is not None
    finally:
        await runtime.close()


async def test_a_missing_webhooks_api_permission_is_a_remediation_not_a_park(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """Without the "Webhooks API" tool permission (Standard; default None) the Webhooks API
    answers 403 while the rest of the company answers: tell the installer, and keep calling
    the company for its resources (its gate stays open)."""
    (await sim.put("/_sim/companies/31", json={"webhooks_api": False})).raise_for_status()
    settings = pipeline_settings()
    runtime = open_runtime(settings, name="conformance-permission-test")
    try:
        for _ in range(settings.park_threshold + 1):
            report = await service.sync_company(runtime, 31, on_demand=True)
            assert not report.ok
            assert report.remediation is not None
            assert "Webhooks API permission: Standard" in report.remediation
        async with runtime.sessions() as session:
            parked = await session.execute(
                text("SELECT count(*) FROM gates WHERE state = 'parked'")
            )
            assert parked.scalar() == 0
        async with api_client(settings) as api:
            shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        assert "Webhooks API permission" in shown["remediation"]

        (await sim.put("/_sim/companies/31", json={"webhooks_api": True})).raise_for_status()
        granted = await service.sync_company(runtime, 31, on_demand=True)
        assert granted.ok
        assert granted.remediation is None
    finally:
        await runtime.close()


async def test_deliveries_procore_discarded_are_fetched_not_a_whole_company_resync(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """The 12-hour gap (FACTS.md §2, §9): the receiver is down long enough for Procore to
    discard its queued deliveries. The Deliveries API lists them with their events; the
    service takes exactly those in and fetches exactly those resources."""
    # 12 hours in about 4 seconds.
    scale = {"time_scale": 0.0001}
    (await sim.put("/_sim/webhooks/settings", json=scale)).raise_for_status()
    port = free_port()
    settings = pipeline_settings(public_base_url=f"http://127.0.0.1:{port}")
    runtime = open_runtime(settings, name="conformance-gap-test")
    try:
        # Installed long ago (no install backfill), hook in place, api not serving.
        async with runtime.sessions() as session, session.begin():
            await session.execute(
                text("INSERT INTO company_hooks (company_id, installed_at) VALUES (32, now())")
            )
        assert (await service.sync_company(runtime, 32, on_demand=True)).ok
        changes: list[dict[str, Any]] = [
            {"resource_name": "RFIs", "resource_id": 5160, "event_type": "update"},
            {"resource_name": "Submittals", "resource_id": 8813, "event_type": "update"},
            {"resource_name": "RFIs", "resource_id": 5199, "event_type": "create"},
        ]
        for change in changes:
            made = await sim.post(
                "/_sim/events", json={"company_id": 32, "project_id": 910, **change}
            )
            assert made.json()["events"] == 1

        async def discarded() -> bool:
            count = (await sim_stats(sim))["deliveries"].get("discarded", 0)
            return int(count) >= len(changes)

        await wait_for(discarded, timeout=30, interval=0.2)
        (await sim.delete("/_sim/calls")).raise_for_status()

        async with serving_api(settings, port), running_worker(settings):
            report = await service.sync_company(runtime, 32, on_demand=True)
            assert report.ok, report
            assert report.recovered == len(changes)
            await wait_for(lambda: all_final(runtime), timeout=30)
        async with runtime.sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT resource_name, resource_id, data FROM resources"
                    " WHERE company_id = 32 AND deleted_at IS NULL"
                )
            )
            mirror = {(r[0], int(r[1])): r[2] for r in rows.all()}
        for change in changes:
            key = (change["resource_name"], change["resource_id"])
            listed = await sim.get(
                "/_sim/resources",
                params={"company_id": 32, "resource_name": key[0]},
            )
            truth = {b["body"]["id"]: b["body"] for b in listed.json()}
            assert mirror[key] == truth[key[1]], key
        calls = await sim_calls(sim, company_id=32)
        routes = calls["by_route"]
        # The discarded resources' show calls; no resync list of RFIs or Submittals.
        assert routes.get("/rest/v1.0/projects/{id}/rfis/{id}") == 2
        assert routes.get("/rest/v1.1/projects/{id}/submittals/{id}") == 1
        assert "/rest/v1.0/projects/{id}/rfis" not in routes
        assert "/rest/v1.1/projects/{id}/submittals" not in routes
        async with runtime.sessions() as session:
            recovered = (
                await session.execute(
                    text("SELECT missed_recovered FROM company_hooks WHERE company_id = 32")
                )
            ).scalar()
        assert recovered == len(changes)
    finally:
        await runtime.close()
