"""A `delete` webhook is a claim: Procore's show confirms it (404/410) or the resource is
refreshed; a body's timestamp never outranks the time the delivery was received.

Procore answers 404 for a resource that is gone (or invisible to the caller) (FACTS.md §6,
`api_essentials/error_reference.md`); webhook bodies carry a `timestamp` that nothing signs
(FACTS.md §1-2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime
from app.settings import Settings
from app.webhooks.tokens import hook_authorization
from tests import payloads
from tests.factories import Spec, all_final, store_events
from tests.harness import api_client, running_worker, wait_for

FAR_FUTURE = "9999-12-31T23:59:59.999999Z"
RFI = {"company_id": 32, "project_id": 910, "resource_name": "RFIs", "resource_id": 5160}


async def mirrored(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(
                text(
                    "SELECT data, procore_updated_at, deleted_at FROM resources"
                    " WHERE company_id = 32 AND resource_name = 'RFIs' AND resource_id = 5160"
                )
            )
        ).one()


async def fetches(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(
            (
                await session.execute(
                    text("SELECT count(*) FROM procore_calls WHERE purpose = 'fetch'")
                )
            ).scalar_one()
        )


async def deliver_delete(runtime: Runtime) -> None:
    """A delete for company 32's RFI, with company 32's own (valid) token, dated 9999."""
    body = payloads.v2(
        company_id=32,
        project_id=910,
        resource_name="RFIs",
        resource_id=5160,
        event_type="delete",
        timestamp=FAR_FUTURE,
    )
    async with api_client(runtime.settings) as api:
        answer = await api.post(
            "/webhooks/procore",
            json=body,
            headers={"Authorization": hook_authorization(runtime.settings, 32)},
        )
    assert answer.status_code == 202, answer.text


async def update_in_procore(sim: httpx.AsyncClient) -> None:
    (await sim.post("/_sim/events", json={**RFI, "event_type": "update"})).raise_for_status()


async def test_forged_far_future_delete_keeps_the_row_and_later_updates_are_mirrored(
    prt: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    spec = Spec("RFIs", 5160, company_id=32, project_id=910)
    async with running_worker(prt.settings):
        await store_events(prt, [spec])
        await wait_for(lambda: all_final(prt), timeout=20)
        before = await mirrored(prt)

        await deliver_delete(prt)  # Procore still shows the RFI: the delete is not true
        await wait_for(lambda: all_final(prt), timeout=20)
        kept = await mirrored(prt)
        assert kept.deleted_at is None
        assert await fetches(prt) == 2  # the delete was checked with Procore

        await update_in_procore(sim)
        await store_events(prt, [spec])
        await wait_for(lambda: all_final(prt), timeout=20)
    after = await mirrored(prt)
    assert after.deleted_at is None
    assert after.procore_updated_at > before.procore_updated_at
    async with prt.sessions() as session:
        delete_event = (
            await session.execute(
                text("SELECT status, last_status FROM events WHERE event_type = 'delete'")
            )
        ).one()
    assert (delete_event.status, delete_event.last_status) == ("done", 200)


async def test_a_confirmed_delete_is_dated_no_later_than_its_receipt(
    prt: Runtime, sim: httpx.AsyncClient
) -> None:
    spec = Spec("RFIs", 5160, company_id=32, project_id=910)
    async with running_worker(prt.settings):
        await store_events(prt, [spec])
        await wait_for(lambda: all_final(prt), timeout=20)
        (await sim.delete("/_sim/resources/RFIs/5160")).raise_for_status()

        await deliver_delete(prt)
        await wait_for(lambda: all_final(prt), timeout=20)
        gone = await mirrored(prt)
        assert gone.deleted_at is not None
        async with prt.sessions() as session:
            received = (
                await session.execute(
                    text(
                        "SELECT received_at, status, last_status FROM events"
                        " WHERE event_type = 'delete'"
                    )
                )
            ).one()
        assert (received.status, received.last_status) == ("done", 404)
        assert gone.deleted_at <= received.received_at  # not 9999-12-31

        # Restored in Procore (created again, then changed): the mirror follows.
        created = await sim.post(
            "/_sim/resources",
            json={"resource_name": "RFIs", "company_id": 32, "project_id": 910, "id": 5160},
        )
        created.raise_for_status()
        await update_in_procore(sim)
        await store_events(prt, [spec])
        await wait_for(lambda: all_final(prt), timeout=20)
    assert (await mirrored(prt)).deleted_at is None
