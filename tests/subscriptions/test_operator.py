"""The operator's handles: admin endpoints and CLI commands for hooks and resyncs, audited;
and the simulator's Webhooks API refusing a company without the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from sqlalchemy import text

from app.runtime import Runtime
from app.settings import Settings
from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY, WEBHOOK_TOKEN
from tests.harness import api_client
from tests.subscriptions.conftest import sim_webhooks
from tests.subscriptions.test_hooks_sync import expected_triggers
from tests.test_cli import run_cli

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def actions(runtime: Runtime) -> list[tuple[str, str]]:
    async with runtime.sessions() as session:
        rows = await session.execute(text("SELECT action, target FROM admin_actions ORDER BY id"))
        return [(str(a), str(t)) for a, t in rows.all()]


async def test_admin_syncs_shows_and_resyncs(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings()
    async with api_client(settings) as api:
        assert (await api.post("/admin/companies/31/hooks/sync")).status_code == 401
        assert (await api.get("/admin/companies/31/hooks", headers=AUTH)).status_code == 404

        synced = await api.post("/admin/companies/31/hooks/sync", headers=AUTH)
        assert synced.status_code == 200, synced.text
        body = synced.json()
        assert body["ok"] is True
        assert body["changes"][0] == "create hook"

        shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        assert shown["hook_id"] == body["hook_id"]
        assert shown["hook_status"] == "active"
        assert shown["triggers"] == len(expected_triggers(settings))
        assert {t["state"] for t in shown["trigger_states"]} == {"active", "not_subscribable"}
        assert shown["destination_url"] == "http://testserver/webhooks/procore"
        assert shown["reenabled"] == 0

        # Procore disabled it: the next sync re-enables it and the company view says so.
        (await sim.post(f"/_sim/webhooks/{body['hook_id']}/disable")).raise_for_status()
        again = (await api.post("/admin/companies/31/hooks/sync", headers=AUTH)).json()
        assert again["reenabled"] == 1
        shown = (await api.get("/admin/companies/31/hooks", headers=AUTH)).json()
        assert shown["reenabled"] == 1
        assert shown["reenabled_at"] is not None

        refused = await api.post(
            "/admin/companies/31/resync", headers=AUTH, json={"resource_name": "Widgets"}
        )
        assert refused.status_code == 422
        asked = await api.post("/admin/companies/31/resync", headers=AUTH, json={"project_id": 900})
        assert asked.status_code == 202, asked.text
        run = asked.json()
        assert run["status"] == "pending"
        assert run["reason"] == "operator"
        one = (await api.get(f"/admin/resync-runs/{run['id']}", headers=AUTH)).json()
        assert one["id"] == run["id"]
        listed = (await api.get("/admin/companies/31/resync-runs", headers=AUTH)).json()
        assert run["id"] in [r["id"] for r in listed]
    assert await actions(clean) == [
        ("hooks_sync", "company:31"),
        ("hooks_sync", "company:31"),
        ("resync", "company:31"),
    ]


async def test_cli_hooks_sync_and_resync(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings()
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "PROCORE_API_BASE": settings.procore_api_base,
        "PROCORE_LOGIN_BASE": settings.procore_login_base,
        "PROCORE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "PROCORE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "WEBHOOK_AUTH_TOKENS": WEBHOOK_TOKEN,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PUBLIC_BASE_URL": "http://cli.test",
        "COLUMNS": "200",
        "LOG_LEVEL": "WARNING",
    }
    synced = await asyncio.to_thread(run_cli, "hooks", "sync", "--company", "31", **env)
    assert synced.returncode == 0, synced.stderr
    assert "create hook" in synced.stdout
    hooks = (await sim_webhooks(sim))["hooks"]
    assert [h["destination_url"] for h in hooks] == ["http://cli.test/webhooks/procore"]

    done = await asyncio.to_thread(
        run_cli, "resync", "--company", "31", "--project", "900", "--resource", "RFIs", **env
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert ": done" in done.stdout
    async with clean.sessions() as session:
        rfis = await session.execute(
            text("SELECT resource_id FROM resources WHERE resource_name = 'RFIs' ORDER BY 1")
        )
        assert list(rfis.scalars()) == [5150, 5151]
    assert ("resync", "company:31") in await actions(clean)


async def test_the_webhooks_api_refuses_a_company_without_the_app(
    clean: Runtime, sim: httpx.AsyncClient
) -> None:
    token = await sim.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
    )
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    refused = await sim.get(
        "/rest/v1.0/webhooks/hooks",
        params={"company_id": 33},
        headers={**bearer, "Procore-Company-Id": "33"},
    )
    assert refused.status_code == 403
    assert "not connected" in refused.text
    listed = await sim.get(
        "/rest/v1.0/webhooks/hooks",
        params={"company_id": 31},
        headers={**bearer, "Procore-Company-Id": "31"},
    )
    assert listed.status_code == 200
    # Not paginated (OpenAPI RestV10WebhooksHooksGet takes no page parameters).
    assert listed.json() == []
    assert "Total" not in listed.headers
