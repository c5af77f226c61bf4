"""A write job's outcome reaches the connector's own system: through the outbox to a
destination, as a signed Standard Webhooks delivery (verified by the reference library in
tests.delivery.receiver), in the jobs' order, naming the keys the connector knows them by."""

from __future__ import annotations

import httpx

from app.runtime import Runtime
from tests.delivery.receiver import Destination
from tests.factories import add_destination, all_jobs_final, submit, vendor
from tests.harness import running_worker, wait_for


async def test_each_outcome_is_delivered_to_a_destination_that_asks_for_jobs(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    async with Destination() as receiver:
        await add_destination(prt, receiver, event_types=["job.*"])
        jobs = [vendor(f"down-{n}") for n in range(4)]
        jobs.insert(2, {**vendor("down-bad"), "payload": {"abbreviated_name": "no name"}})
        ids = await submit(prt, jobs)
        async with running_worker(prt.settings):
            await wait_for(lambda: all_jobs_final(prt), timeout=30)
            delivered = await receiver.wait_for(len(jobs), timeout_s=30)

    assert [d.data["job_id"] for d in delivered] == ids
    assert [d.type for d in delivered] == ["job.succeeded"] * 2 + ["job.failed"] + [
        "job.succeeded"
    ] * 2
    failed = delivered[2].data
    assert failed["idempotency_key"] == jobs[2]["idempotency_key"]
    assert failed["origin_id"] == "down-bad"
    assert failed["reason"] == "name: can't be blank"
    assert failed["http_status"] == 200
    ok = delivered[0].data
    assert ok["resource_name"] == "Company Vendors"
    assert ok["operation"] == "sync"
    assert isinstance(ok["resource_id"], int)
    assert ok["company_id"] == 31
