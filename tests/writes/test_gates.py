"""Write jobs meet the gates like reads do (DESIGN.md "Gates"; FACTS.md §6): a 403 "not
connected" on a write is an install signal on the company gate; once it parks, the company's
jobs are parked without a call; when it opens they run in submission order. The simulator's
call counters are the evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.admin import service as admin
from app.queue import enqueue_writes
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import (
    all_jobs_final,
    job_rows,
    job_statuses,
    published,
    rfi,
    sim_resources,
    submit,
    vendor,
    write_calls,
)
from tests.harness import running_worker, sim_calls, wait_for

UNINSTALLED = 33
THRESHOLD = 3
TIMINGS: dict[str, object] = {
    "park_threshold": THRESHOLD,
    "park_window_seconds": 60.0,
    # Probes wait: the install below is confirmed by the operator's check, at once.
    "probe_base_seconds": 30.0,
    "probe_cap_seconds": 60.0,
    "write_sync_batch_size": 5,
}


async def writes_to(sim: httpx.AsyncClient, company: int) -> int:
    """Write calls the simulator received for a company (every route that changes)."""
    calls = await sim_calls(sim, company_id=company)
    return sum(n for path, n in calls["by_path"].items() if path.endswith(("/sync", "/rfis")))


async def test_an_uninstalled_companys_jobs_park_then_run_in_submission_order(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = open_runtime(pipeline_settings(**TIMINGS), name="write-gates-test")
    try:
        waiting = [vendor(f"v33-{n}", company_id=UNINSTALLED) for n in range(20)]
        waiting.insert(7, rfi("R33-1", project_id=920, company_id=UNINSTALLED))
        healthy = [vendor(f"v31-{n}") for n in range(10)]
        ids = await submit(runtime, waiting + healthy)
        ours = ids[: len(waiting)]

        async def parked() -> bool:
            rows = await job_rows(runtime, ours)
            return all(r.status == "parked" for r in rows)

        async with running_worker(runtime.settings):
            await wait_for(parked, timeout=30)
            refused = await writes_to(sim, UNINSTALLED)
            async with runtime.sessions() as session:
                gate = (
                    await session.execute(
                        text("SELECT * FROM gates WHERE scope_key = 'company:33'")
                    )
                ).one()
            # Detected after THRESHOLD refused writes; then no write call at all.
            assert refused == THRESHOLD
            assert gate.state == "parked"
            assert gate.diagnosis == "not_installed"
            for _ in range(3):
                # Runs of the parked company's lane: nothing to call.
                await enqueue_writes(runtime.queue, UNINSTALLED)
            await wait_for(lambda: _healthy_done(runtime, ids[len(waiting) :]), timeout=30)
            assert await writes_to(sim, UNINSTALLED) == refused
            rows = await job_rows(runtime, ours)
            assert {r.gate_id for r in rows} == {gate.id}
            assert {r.credential_id is not None for r in rows} == {True}

            (
                await sim.put(f"/_sim/companies/{UNINSTALLED}", json={"installed": True})
            ).raise_for_status()
            report = await admin.confirm_install(runtime, UNINSTALLED, actor="test")
            assert report.opened
            await wait_for(lambda: all_jobs_final(runtime), timeout=60)

        assert await job_statuses(runtime) == {"succeeded": len(ids)}
        rows = await job_rows(runtime, ours)
        # Submission order: Procore's ids (allocated as it creates) rise with the job ids.
        made = [r.resource_id for r in rows]
        assert made == sorted(made)
        held = {v["origin_id"] for v in await sim_resources(sim, UNINSTALLED, "Company Vendors")
                if v.get("origin_id")}  # fmt: skip
        assert held == {f"v33-{n}" for n in range(20)}
        kinds = [(e.job_id, e.kind) for e in await published(runtime) if e.job_id in ours]
        assert [k for _, k in kinds] == ["job.parked"] * len(ours) + ["job.succeeded"] * len(ours)
        writes = [c for c in await write_calls(runtime) if c.company_id == UNINSTALLED]
        assert [c.status for c in writes][:THRESHOLD] == [403] * THRESHOLD
        assert {c.status for c in writes[THRESHOLD:]} == {200, 201}
    finally:
        await runtime.close()


async def _healthy_done(runtime: Runtime, ids: list[int]) -> bool:
    return all(r.status == "succeeded" for r in await job_rows(runtime, ids))


async def test_a_project_the_app_may_not_write_to_fails_its_first_jobs_then_parks(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    """Project 902 does not admit the service account: 403 (not "not connected"). A refused
    write is not sent again blindly (it fails, with Procore's reason); the refusals are gate
    signals, so after PARK_THRESHOLD of them the project is parked and its other jobs wait
    there without a call."""
    runtime = open_runtime(pipeline_settings(**TIMINGS), name="write-gates-test")
    try:
        ids = await submit(runtime, [rfi(f"R902-{n}", project_id=902) for n in range(6)])

        async def settled() -> bool:
            return set(await job_statuses(runtime)) <= {"failed", "parked"}

        async with running_worker(runtime.settings):
            await wait_for(settled, timeout=30)
        rows = await job_rows(runtime, ids)
        assert [r.status for r in rows] == ["failed"] * THRESHOLD + ["parked"] * 3
        assert all(r.last_status == 403 for r in rows[:THRESHOLD])
        assert "permission" in rows[0].last_error
        assert len(await write_calls(runtime)) == THRESHOLD
    finally:
        await runtime.close()
