"""Lost answers and killed workers: every job's effect happens once (FACTS.md §11).

- A sync item is keyed by `origin_id`: sent again after a lost answer, it updates what the
  first attempt created (`tutorials/using_sync_actions.md`).
- A plain create is never sent again blindly: its job kept `sent_at`, so the next run lists
  the resource by a key the payload carries (RFIs: `filters[number]`,
  RestV10ProjectsProjectIdRfisGet) and takes what it finds, or sends again when nothing is
  there; when Procore cannot be asked (Observation Items), the job stops `in_doubt`, visibly,
  for an operator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.admin import service as admin
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import (
    all_jobs_final,
    job,
    job_rows,
    job_statuses,
    published,
    rfi,
    sim_resources,
    submit,
    vendor,
    write_calls,
)
from tests.harness import running_worker, sim_stats, start_worker, wait_for

FAST: dict[str, object] = {"procore_timeout_seconds": 1.0, "write_sync_batch_size": 5}


async def runtime_with(build: Callable[..., Settings], **overrides: object) -> Runtime:
    return open_runtime(build(**{**FAST, **overrides}), name="write-lost-test")


async def test_sync_items_sent_again_after_lost_answers_make_one_resource_each(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = await runtime_with(pipeline_settings, retry_max_attempts=8)
    try:
        await sim.put("/_sim/faults", json={"lost_answer_rate": 0.3, "rng_seed": 7})
        ids = await submit(runtime, [vendor(f"lost-{n}") for n in range(30)])
        async with running_worker(runtime.settings):
            await wait_for(lambda: all_jobs_final(runtime), timeout=60)
        stats = await sim_stats(sim)
        statuses = await job_statuses(runtime)
        rows = await job_rows(runtime, ids)
    finally:
        await runtime.close()

    assert stats["faults"]["lost_answers"] >= 1
    assert statuses == {"succeeded": 30}
    origins = [v.get("origin_id") for v in await sim_resources(sim, 31, "Company Vendors")]
    assert sorted(o for o in origins if o) == sorted(f"lost-{n}" for n in range(30))
    assert stats["writes"]["Company Vendors"]["create"] == 30
    assert max(r.attempts for r in rows) >= 1, "some were sent again"


async def test_a_create_whose_answer_was_lost_is_looked_up_not_sent_again(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = await runtime_with(pipeline_settings)
    try:
        await sim.put("/_sim/faults", json={"lost_answer_rate": 1.0, "company_id": 31})
        [job_id] = await submit(runtime, [rfi("LOST-1")])

        async def in_doubt() -> bool:
            [row] = await job_rows(runtime, [job_id])
            return row.sent_at is not None and row.status == "retrying"

        async with running_worker(runtime.settings):
            await wait_for(in_doubt, timeout=30)
            (await sim.delete("/_sim/faults")).raise_for_status()
            await wait_for(lambda: all_jobs_final(runtime), timeout=30)
        stats = await sim_stats(sim)
        [row] = await job_rows(runtime, [job_id])
        writes, lookups = await write_calls(runtime), await write_calls(runtime, "lookup")
    finally:
        await runtime.close()

    made = [r for r in await sim_resources(sim, 31, "RFIs") if r.get("number") == "LOST-1"]
    assert len(made) == 1
    assert stats["writes"]["RFIs"] == {"create": 1}
    assert (row.status, row.resource_id, row.sent_at) == ("succeeded", made[0]["id"], None)
    assert [(c.method, c.status) for c in writes] == [("POST", None)]
    assert [(c.method, c.status) for c in lookups] == [("GET", 200)]
    assert "filters[number]=LOST-1" in lookups[0].path


async def test_a_create_that_never_arrived_is_looked_up_then_sent_again(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    """A dropped connection before Procore acted: the look-up finds nothing, so it is sent
    again, once."""
    runtime = await runtime_with(pipeline_settings)
    try:
        await sim.put("/_sim/faults", json={"drop_rate": 1.0, "company_id": 31})
        [job_id] = await submit(runtime, [rfi("DROP-1")])

        async def sent_once() -> bool:
            [row] = await job_rows(runtime, [job_id])
            return row.sent_at is not None and row.status == "retrying"

        async with running_worker(runtime.settings):
            await wait_for(sent_once, timeout=30)
            (await sim.delete("/_sim/faults")).raise_for_status()
            await wait_for(lambda: all_jobs_final(runtime), timeout=30)
        stats = await sim_stats(sim)
        writes = await write_calls(runtime)
    finally:
        await runtime.close()

    assert stats["writes"]["RFIs"] == {"create": 1}
    assert [c.status for c in writes] == [None, 201]
    assert [r for r in await sim_resources(sim, 31, "RFIs") if r.get("number") == "DROP-1"]


async def test_a_create_procore_cannot_be_asked_about_waits_in_doubt_for_an_operator(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = await runtime_with(pipeline_settings)
    try:
        await sim.put("/_sim/faults", json={"lost_answer_rate": 1.0, "company_id": 31})
        observation = job(
            "Observation Items", "create", project_id=900,
            payload={"name": "Guardrail missing", "type_id": 3},
        )  # fmt: skip
        [job_id] = await submit(runtime, [observation])

        async def stopped() -> bool:
            return (await job_statuses(runtime)) == {"in_doubt": 1}

        async with running_worker(runtime.settings):
            await wait_for(stopped, timeout=30)
            await sim.delete("/_sim/faults")
            calls_in_doubt = len(await write_calls(runtime))
            made = [o for o in await sim_resources(sim, 31, "Observation Items")
                    if o.get("name") == "Guardrail missing"]  # fmt: skip
            async with runtime.sessions() as session, session.begin():
                resolved = await admin.act_on_job(
                    session, job_id, admin.JobAction.RESOLVE, actor="test",
                    resource_id=made[0]["id"],
                )  # fmt: skip
        events = [(e.kind, e.detail) for e in await published(runtime)]
        [row] = await job_rows(runtime, [job_id])
    finally:
        await runtime.close()

    assert calls_in_doubt == 1, "sent once, never again"
    assert len(made) == 1
    assert resolved is not None
    assert (row.status, row.resource_id) == ("succeeded", made[0]["id"])
    assert events[0][0] == "job.parked"
    assert events[0][1]["status"] == "in_doubt"
    assert "resolve" in events[0][1]["reason"]
    kind, detail = events[1]
    assert kind == "job.succeeded"
    assert detail["resource_id"] == made[0]["id"]
    assert detail["resolved"] is True
    assert detail["idempotency_key"] == observation["idempotency_key"]


async def test_workers_killed_mid_call_leave_nothing_done_twice(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    """A worker cancelled while its calls are in flight: the jobs' leases run out, another
    worker takes them; a create's `sent_at` sends it through the look-up."""
    runtime = await runtime_with(pipeline_settings, processing_lease_seconds=3.0)
    try:
        await sim.put("/_sim/faults", json={"latency_ms": 800, "company_id": 31})
        ids = await submit(runtime, [rfi("KILL-1"), *[vendor(f"kill-{n}") for n in range(10)]])

        async def in_flight() -> bool:
            rows = await job_rows(runtime, ids[:1])
            return rows[0].sent_at is not None

        killed = start_worker(runtime.settings)
        await wait_for(in_flight, timeout=30)
        await killed.stop(graceful=False)
        await sim.delete("/_sim/faults")
        async with running_worker(runtime.settings):
            await wait_for(lambda: all_jobs_final(runtime), timeout=60)
        stats = await sim_stats(sim)
        statuses = await job_statuses(runtime)
    finally:
        await runtime.close()

    assert statuses == {"succeeded": 11}
    assert stats["writes"]["RFIs"] == {"create": 1}
    assert stats["writes"]["Company Vendors"]["create"] == 10
    numbers = [r.get("number") for r in await sim_resources(sim, 31, "RFIs")]
    assert numbers.count("KILL-1") == 1
