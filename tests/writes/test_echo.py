"""The loop: Procore sends a webhook for the app's own change, with
`metadata.source_application_id` = the app's client id (FACTS.md §1, §11). The receiver
stores it `ignored`; it costs no fetch, since the write already put Procore's answer in the
mirror."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import WEBHOOK_TOKEN
from tests.factories import all_jobs_final, job, job_rows, rfi, submit, vendor
from tests.harness import running_worker, wait_for
from tests.subscriptions.conftest import free_port, serving_api


async def test_the_echo_of_each_write_is_ignored_and_costs_no_fetch(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    port = free_port()
    settings = pipeline_settings(public_base_url=f"http://127.0.0.1:{port}")
    runtime = open_runtime(settings, name="write-echo-test")
    try:
        async with serving_api(settings, port) as base_url:
            hook = await sim.post(
                "/_sim/hooks",
                json={
                    "destination_url": f"{base_url}/webhooks/procore",
                    "authorization": WEBHOOK_TOKEN,
                    "payload_version": "v3.0",
                },
            )
            hook.raise_for_status()
            observation = job("Observation Items", "delete", project_id=900, resource_id=7001)
            ids = await submit(
                runtime,
                [*(vendor(f"echo-{n}") for n in range(5)), rfi("ECHO-1"), observation],
            )

            async def echoed() -> bool:
                async with runtime.sessions() as session:
                    count = (await session.execute(text("SELECT count(*) FROM events"))).scalar()
                return count == len(ids)

            async with running_worker(settings):
                await wait_for(lambda: all_jobs_final(runtime), timeout=30)
                assert (await sim.post("/_sim/drain", json={"timeout_s": 10})).json()["drained"]
                await wait_for(echoed, timeout=20)
            async with runtime.sessions() as session:
                events = (await session.execute(text("SELECT * FROM events"))).all()
                fetches = (
                    await session.execute(
                        text("SELECT count(*) FROM procore_calls WHERE purpose = 'fetch'")
                    )
                ).scalar()
                mirror = {
                    (r.resource_name, r.resource_id): r
                    for r in await session.execute(text("SELECT * FROM resources"))
                }
            rows = await job_rows(runtime, ids)
    finally:
        await runtime.close()

    assert {e.status for e in events} == {"ignored"}
    assert {e.source_application_id for e in events} == {settings.procore_client_id}
    assert sorted((e.resource_name, e.resource_id) for e in events) == sorted(
        (r.resource_name, r.resource_id) for r in rows
    )
    assert fetches == 0
    for row in rows:
        mirrored = mirror[(row.resource_name, row.resource_id)]
        if row.operation == "delete":
            assert mirrored.deleted_at is not None
        else:
            assert mirrored.data == row.answer
            assert mirrored.deleted_at is None
