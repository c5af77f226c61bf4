"""Each class of answer ends where DESIGN.md's table says, end to end through a real worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import running_worker, sim_calls, wait_for

RFI_PATH = "/rest/v1.0/projects/900/rfis/5150"


async def event_row(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(
                text(
                    "SELECT status, attempts, claims, last_status, last_error, finished_at"
                    " FROM events"
                )
            )
        ).one()


async def test_a_5xx_burst_is_retried_until_it_succeeds(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = open_runtime(pipeline_settings(retry_max_attempts=20), name="t")
    try:
        faults = {"error_rate": 1.0, "error_status": 502, "company_id": 31}
        (await sim.put("/_sim/faults", json=faults)).raise_for_status()
        await store_events(runtime, [Spec("RFIs", 5150)])
        async with running_worker(runtime.settings):

            async def failed_twice() -> bool:
                row = await event_row(runtime)
                return bool(row.attempts >= 2)

            await wait_for(failed_twice, timeout=20)
            (await sim.delete("/_sim/faults")).raise_for_status()
            await wait_for(lambda: all_final(runtime), timeout=20)
        row = await event_row(runtime)
        assert row.status == "done"
        assert row.attempts >= 2
        assert row.last_status == 200
        assert row.finished_at is not None
        by_status = (await sim_calls(sim, company_id=31))["by_status"]
        assert by_status["502"] >= 2
        assert by_status["200"] == 1
    finally:
        await runtime.close()


async def test_a_permanent_5xx_is_dead_after_the_max_attempts(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    faults = {"error_rate": 1.0, "error_status": 500, "company_id": 31}
    (await sim.put("/_sim/faults", json=faults)).raise_for_status()
    await store_events(prt, [Spec("RFIs", 5150)])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=30)
    row = await event_row(prt)
    assert row.status == "dead"
    assert row.attempts == prt.settings.retry_max_attempts
    assert row.last_status == 500
    assert "Internal Server Error" in row.last_error
    calls = await sim_calls(sim, company_id=31)
    assert calls["by_path"][RFI_PATH] == prt.settings.retry_max_attempts
    async with prt.sessions() as session:
        audited = (
            await session.execute(
                text("SELECT count(*) FROM procore_calls WHERE purpose = 'fetch' AND status = 500")
            )
        ).scalar_one()
    assert audited == prt.settings.retry_max_attempts


async def test_a_404_is_skipped_without_retry(prt: Runtime, sim: httpx.AsyncClient) -> None:
    await store_events(prt, [Spec("RFIs", 424242)])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
    row = await event_row(prt)
    assert (row.status, row.attempts, row.last_status) == ("skipped", 0, 404)
    assert "not found" in row.last_error.lower()
    assert (await sim_calls(sim, company_id=31))["total"] == 1


async def test_unservable_events_are_dead_at_once(prt: Runtime, sim: httpx.AsyncClient) -> None:
    await store_events(
        prt,
        [
            Spec("Daily Logs", 1),  # not in the endpoint table
            Spec("Submittals", 8812, project_id=None),  # a project resource without project
        ],
    )
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
    assert await statuses(prt) == {"dead": 2}
    assert (await sim_calls(sim))["total"] == 0


async def test_a_422_is_dead_at_once_without_retry(prt: Runtime, sim: httpx.AsyncClient) -> None:
    faults = {"error_rate": 1.0, "error_status": 422, "company_id": 31}
    (await sim.put("/_sim/faults", json=faults)).raise_for_status()
    await store_events(prt, [Spec("RFIs", 5150)])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
    row = await event_row(prt)
    assert row.status == "dead"
    assert row.attempts == 0
    assert row.last_status == 422
    assert "Unprocessable" in row.last_error
    calls = await sim_calls(sim, company_id=31)
    assert calls["by_status"] == {"422": 1}
