"""A company's hook against the simulator's Webhooks API: created once, left alone when right,
fixed when the token rotates, re-enabled when Procore disabled it; other namespaces untouched.

Procore's behaviour as these tests hold the simulator to it: FACTS.md §9 and
`plan_your_app/webhooks_api.md` (masked `Authorization`; trigger bodies carry `api_version`;
`except` of `GET /rest/v1.0/webhooks/resources`; the Webhooks API tool permission), the
OpenAPI `RestV10WebhooksHooksGet` (no `status` in v1.0 hooks) and
`RestV20CompaniesCompanyIdWebhooksHooksIdPatch` (v2.0 shows and sets `status`)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import text

from app.procore.calls import CallRecord
from app.registry import resources
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from app.subscriptions import service
from app.subscriptions.views import hooks_of
from app.webhooks.tokens import hook_authorization
from simulator.resources import KINDS
from tests.conftest import WEBHOOK_SECRET
from tests.harness import wait_for
from tests.subscriptions.conftest import free_port, sim_webhooks


def expected_triggers(settings: Settings) -> set[tuple[str, str]]:
    """What the service wants (its registry) that Procore allows (the simulator's world)."""
    return {
        (r, e)
        for r in settings.sync_resources
        for e in resources.REGISTRY[r].subscribed_events()
        if e in KINDS[r].events
    }


async def test_one_hook_then_nothing_then_rotation_then_reenable(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings(public_base_url="http://receiver.test")
    runtime = open_runtime(settings, name="subscriptions-test")
    try:
        # Someone else's hook in the same company: never touched.
        calls: list[CallRecord] = []
        credential, _ = await runtime.procore.tokens.credential_for(31)
        assert credential is not None
        foreign = await runtime.procore.request(
            "POST",
            "/rest/v1.0/webhooks/hooks",
            credential=credential,
            company_id=31,
            calls=calls,
            json={
                "company_id": 31,
                "hook": {
                    "namespace": "someone-else",
                    "destination_url": "http://elsewhere.test/hook",
                    "destination_headers": {"Authorization": "theirs"},
                    "api_version": "v2.0",
                },
            },
        )
        assert foreign.outcome.status == 201

        wanted = expected_triggers(settings)
        first = await service.sync_company(runtime, 31, on_demand=True)
        assert first.ok, first
        assert first.changes[0] == "create hook"
        assert len(first.changes) == 1 + len(wanted)
        assert first.refusals == []
        state = await sim_webhooks(sim)
        ours = [h for h in state["hooks"] if h["namespace"] == "procore-hooks"]
        assert len(ours) == 1
        hook = ours[0]
        assert hook["destination_url"] == "http://receiver.test/webhooks/procore"
        # The company's own token (app.webhooks.tokens), not a value shared by every company.
        assert hook["destination_headers"] == {"Authorization": hook_authorization(settings, 31)}
        assert hook["owned_by_company_id"] == 31
        assert {(t["resource_name"], t["event_type"]) for t in hook["triggers"]} == wanted
        # Nothing Procore lists in `except` was asked for: Project Vendors' updates ended.
        assert ("Project Vendors", "update") not in wanted
        assert ("Company Vendors", "update") in wanted
        writes = state["writes"]

        # Procore masks the header in its listings: compared by its last five characters
        # and our own record, an unchanged company costs no write.
        second = await service.sync_company(runtime, 31, on_demand=True)
        assert second.ok
        assert second.changes == []
        assert (await sim_webhooks(sim))["writes"] == writes

        # Rotation: a new first WEBHOOK_AUTH_TOKENS value is pushed to the hook.
        rotated = pipeline_settings(
            public_base_url="http://receiver.test",
            webhook_auth_tokens=f"rotated-secret,{WEBHOOK_SECRET}",
        )
        other = open_runtime(rotated, name="subscriptions-test-rotated")
        try:
            third = await service.sync_company(other, 31, on_demand=True)
        finally:
            await other.close()
        assert third.ok
        assert third.changes == [f"update hook {hook['id']}: destination_headers"]
        state = await sim_webhooks(sim)
        by_ns = {h["namespace"]: h for h in state["hooks"]}
        assert by_ns["procore-hooks"]["destination_headers"] == {
            "Authorization": hook_authorization(rotated, 31)
        }
        assert by_ns["someone-else"]["destination_headers"] == {"Authorization": "theirs"}
        assert by_ns["someone-else"]["destination_url"] == "http://elsewhere.test/hook"
        assert len(state["hooks"]) == 2

        # Procore disabled the hook (repeated failures): re-enabled and reported.
        (await sim.post(f"/_sim/webhooks/{hook['id']}/disable")).raise_for_status()
        assert {h["id"]: h["status"] for h in (await sim_webhooks(sim))["hooks"]}[
            hook["id"]
        ] == "disabled"
        other = open_runtime(rotated, name="subscriptions-test-rotated")
        try:
            fourth = await service.sync_company(other, 31, on_demand=True)
        finally:
            await other.close()
        assert fourth.reenabled == 1
        assert fourth.changes == [f"re-enable hook {hook['id']}"]
        assert {h["id"]: h["status"] for h in (await sim_webhooks(sim))["hooks"]}[
            hook["id"]
        ] == "active"
        async with runtime.sessions() as session:
            row = (
                await session.execute(
                    text("SELECT hook_id, hook_status, reenabled, triggers FROM company_hooks")
                )
            ).one()
            view = await hooks_of(session, 31)
        assert tuple(row) == (hook["id"], "active", 1, len(wanted))
        assert view is not None
        assert view.reenabled_at is not None
        assert view.status_seen_at is not None
    finally:
        await runtime.close()


async def test_a_hook_disabled_after_failed_deliveries_is_reenabled_and_counted(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    # Procore deactivates a hook after repeated failures; here after 2, with fast backoff.
    answer = await sim.put(
        "/_sim/webhooks/settings", json={"deactivate_after_failures": 2, "time_scale": 0.001}
    )
    answer.raise_for_status()
    # Nothing listens there: every delivery fails.
    settings = pipeline_settings(public_base_url=f"http://127.0.0.1:{free_port()}")
    runtime = open_runtime(settings, name="subscriptions-disabled-test")
    before = REGISTRY.get_sample_value("procore_hooks_hooks_reenabled_total") or 0.0
    try:
        assert (await service.sync_company(runtime, 32, on_demand=True)).ok
        event = {"company_id": 32, "project_id": 910, "resource_name": "RFIs",
                 "resource_id": 5160, "event_type": "update"}  # fmt: skip
        assert (await sim.post("/_sim/events", json=event)).json()["events"] == 1

        async def disabled() -> bool:
            return [h["status"] for h in (await sim_webhooks(sim))["hooks"]] == ["disabled"]

        await wait_for(disabled, timeout=10, interval=0.05)
        report = await service.sync_company(runtime, 32, on_demand=True)
        assert report.reenabled == 1
        assert [h["status"] for h in (await sim_webhooks(sim))["hooks"]] == ["active"]
        after = REGISTRY.get_sample_value("procore_hooks_hooks_reenabled_total")
        assert after == before + 1
        hook_id = report.hook_id
        async with runtime.sessions() as session:
            row = (
                await session.execute(
                    text("SELECT hook_id, hook_status, reenabled FROM company_hooks")
                )
            ).one()
        assert tuple(row) == (hook_id, "active", 1)
    finally:
        await runtime.close()
