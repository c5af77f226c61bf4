"""Write jobs run by a real arq Worker against the simulator: through the one Procore client,
batched into sync calls, mapped back per item, mirrored, published."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from app.runtime import Runtime
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
from tests.harness import running_worker, wait_for


async def test_vendor_syncs_run_in_one_call_and_land_in_the_mirror(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    """RestV10VendorsSyncPatch: up to 1000 items per call (`tutorials/using_sync_actions.md`);
    the answer's entities are the resources as Procore now holds them."""
    ids = await submit(prt, [vendor(f"erp-{n}") for n in range(20)])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_jobs_final(prt), timeout=30)

    assert await job_statuses(prt) == {"succeeded": 20}
    calls = await write_calls(prt)
    assert [(c.method, c.path, c.status) for c in calls] == [
        ("PATCH", "/rest/v1.0/vendors/sync", 200)
    ]
    held = {v["origin_id"]: v for v in await sim_resources(sim, 31, "Company Vendors")
            if v.get("origin_id")}  # fmt: skip
    rows = await job_rows(prt, ids)
    for row in rows:
        assert row.resource_id == held[row.origin_id]["id"]
        assert row.answer == held[row.origin_id]
        assert row.last_status == 200
    async with prt.sessions() as session:
        mirrored = {
            r.resource_id: r.data
            for r in await session.execute(
                text(
                    "SELECT resource_id, data FROM resources"
                    " WHERE resource_name = 'Company Vendors'"
                )
            )
        }
    assert mirrored == {v["id"]: v for v in held.values()}
    assert [(e.job_id, e.kind) for e in await published(prt)] == [(i, "job.succeeded") for i in ids]


async def test_a_sync_batch_with_invalid_items_fails_only_those_with_procores_reasons(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    """Each failed item is in the 200's `errors` with its reasons (`using_sync_actions.md`):
    those jobs end `failed` with them, the others succeed, and nothing is sent again."""
    jobs = [vendor(f"ok-{n}") for n in range(6)]
    for n in (1, 4):
        jobs.insert(n, {**vendor(f"bad-{n}"), "payload": {"abbreviated_name": "no name"}})
    ids = await submit(prt, jobs)
    async with running_worker(prt.settings):
        await wait_for(lambda: all_jobs_final(prt), timeout=30)
        await asyncio.sleep(2.5)  # a few more dispatcher ticks: nothing is retried

    rows = {r.id: r for r in await job_rows(prt, ids)}
    failed = [r for r in rows.values() if r.status == "failed"]
    assert sorted(r.origin_id for r in failed) == ["bad-1", "bad-4"]
    for row in failed:
        assert row.last_status == 200
        assert row.last_error == "name: can't be blank"
        assert row.answer["errors"] == {"name": ["can't be blank"]}
        assert row.attempts == 0
        assert row.resource_id is None
    assert sum(r.status == "succeeded" for r in rows.values()) == 6
    assert len(await write_calls(prt)) == 1
    kinds = {e.job_id: e.kind for e in await published(prt)}
    assert {kinds[r.id] for r in failed} == {"job.failed"}
    assert not [v for v in await sim_resources(sim, 31, "Company Vendors")
                if str(v.get("origin_id", "")).startswith("bad-")]  # fmt: skip


async def test_a_write_answered_with_a_definite_refusal_is_not_retried(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    """An update of an RFI that does not exist: 404; a create Procore refuses: 422 with its
    `errors` (FACTS.md §6). Both end `failed` with Procore's answer, one call each."""
    missing = job("RFIs", "update", project_id=900, resource_id=424242,
                  payload={"subject": "Gone"})  # fmt: skip
    refused = rfi("R-9")
    refused["payload"] = {**refused["payload"], "question": {"body": "q"}}
    await sim.put("/_sim/faults", json={"error_rate": 1.0, "error_status": 422, "company_id": 32})
    refused["company_id"], refused["project_id"] = 32, 910
    ids = await submit(prt, [missing, refused])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_jobs_final(prt), timeout=30)
        await asyncio.sleep(1.5)

    first, second = await job_rows(prt, ids)
    assert (first.status, first.last_status, first.attempts) == ("failed", 404, 0)
    assert first.answer == {"errors": ["Record not found."]}
    assert (second.status, second.last_status) == ("failed", 422)
    assert second.sent_at is None, "a definite answer: nothing left in doubt"
    assert len(await write_calls(prt)) == 2
