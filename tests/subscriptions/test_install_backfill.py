"""An install confirmed → the company's hook is created and everything it already had is
backfilled (paced under the rate limit); deliveries to the new hook then keep it current."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import text

from app.gates import service as gates
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.harness import running_worker, sim_calls, wait_for
from tests.subscriptions.conftest import free_port, serving_api, sim_webhooks

COMPANY = 33  # not installed in the seed; project 920 (and RFI 5170) exists
PROJECTS = (920, 921, 922)
NEW_RFIS = (167, 167, 166)  # 500 RFIs made before the install, plus the seeded one


async def mirrored(runtime: Runtime, resource_name: str) -> int:
    async with runtime.sessions() as session:
        found = await session.execute(
            text(
                "SELECT count(*) FROM resources WHERE company_id = :c AND resource_name = :r"
                " AND deleted_at IS NULL"
            ),
            {"c": COMPANY, "r": resource_name},
        )
        return int(found.scalar_one())


async def test_install_creates_the_hook_backfills_and_deliveries_keep_it_current(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    for project in PROJECTS[1:]:
        answer = await sim.put(f"/_sim/companies/{COMPANY}/projects/{project}", json={})
        answer.raise_for_status()
    for project, count in zip(PROJECTS, NEW_RFIS, strict=True):
        made = await sim.post(
            "/_sim/events",
            json={
                "company_id": COMPANY,
                "project_id": project,
                "resource_name": "RFIs",
                "event_type": "create",
                "count": count,
            },
        )
        made.raise_for_status()
    # Procore's published spike limit: pacing, not 429s, must keep the backfill under it.
    (await sim.put("/_sim/rate_limit", json={"hourly": 3600, "spike": 25})).raise_for_status()

    port = free_port()
    # The install flow, over the types this test watches (every type is another test's).
    settings = pipeline_settings(
        public_base_url=f"http://127.0.0.1:{port}", sync_resources="RFIs,Projects,Company Users"
    )
    runtime = open_runtime(settings, name="subscriptions-install-test")
    try:
        async with serving_api(settings, port), running_worker(settings, subscriptions=True):
            # The customer installs the app; the operator confirms it (a probe, never blind).
            (
                await sim.put(f"/_sim/companies/{COMPANY}", json={"installed": True})
            ).raise_for_status()
            (await sim.delete("/_sim/calls")).raise_for_status()
            report = await gates.confirm_install(runtime, COMPANY)
            assert report.opened, report

            async def backfilled() -> bool:
                async with runtime.sessions() as session:
                    status = await session.execute(
                        text("SELECT status FROM resync_runs WHERE company_id = :c"),
                        {"c": COMPANY},
                    )
                    return [s for (s,) in status.all()] == ["done"]

            await wait_for(backfilled, timeout=60, interval=0.2)
            assert await mirrored(runtime, "RFIs") == 501
            assert await mirrored(runtime, "Projects") == 3
            assert await mirrored(runtime, "Company Users") == 1

            calls = await sim_calls(sim, company_id=COMPANY)
            limited = calls["by_status"].get("429", 0)
            assert limited / calls["total"] < 0.01, calls["by_status"]

            hooks = [
                h for h in (await sim_webhooks(sim))["hooks"] if h["owned_by_company_id"] == COMPANY
            ]
            assert len(hooks) == 1
            assert hooks[0]["status"] == "active"
            assert hooks[0]["destination_url"] == f"http://127.0.0.1:{port}/webhooks/procore"

            # Webhook deliveries then keep the mirror current.
            rfi = (
                await sim.get(
                    "/_sim/resources",
                    params={"company_id": COMPANY, "project_id": 921, "resource_name": "RFIs"},
                )
            ).json()[0]["body"]["id"]
            changed = await sim.post(
                "/_sim/events",
                json={
                    "company_id": COMPANY,
                    "project_id": 921,
                    "resource_name": "RFIs",
                    "resource_id": rfi,
                    "event_type": "update",
                },
            )
            assert changed.json()["events"] == 1

            async def current() -> bool:
                async with runtime.sessions() as session:
                    subject = await session.execute(
                        text(
                            "SELECT data->>'subject' FROM resources WHERE company_id = :c"
                            " AND resource_name = 'RFIs' AND resource_id = :r"
                        ),
                        {"c": COMPANY, "r": rfi},
                    )
                    return "(rev 1)" in (subject.scalar_one() or "")

            await wait_for(current, timeout=20, interval=0.2)
    finally:
        await runtime.close()
