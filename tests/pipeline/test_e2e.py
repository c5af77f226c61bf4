"""Webhook in → resource mirrored, through a real arq Worker against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.registry import resources
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import running_worker, wait_for


async def every_type(sim: httpx.AsyncClient) -> list[Spec]:
    """One seeded resource of every type in the registry, as the simulator holds it."""
    specs: list[Spec] = []
    for name in resources.NAMES:
        listed = await sim.get("/_sim/resources", params={"company_id": 31, "resource_name": name})
        held = [r for r in listed.json() if r["project_id"] in (None, 900)]
        assert held, f"the simulator's seed has no {name} in company 31"
        specs.append(Spec(name, held[0]["body"]["id"], project_id=held[0]["project_id"]))
    return specs


async def mirror_rows(runtime: Runtime) -> dict[tuple[str, int], dict[str, Any]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT resource_name, resource_id, data, procore_updated_at, deleted_at,"
                " change_seq FROM resources"
            )
        )
        return {(r.resource_name, r.resource_id): r._asdict() for r in rows}


async def test_every_resource_type_is_mirrored(
    prt: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """Webhook event → the registry's show call → the mirror, for every registered type."""
    specs = await every_type(sim)
    assert len(specs) == len(resources.REGISTRY) >= 25
    await store_events(prt, specs)
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=30)
    assert await statuses(prt) == {"done": len(specs)}
    mirrored = await mirror_rows(prt)
    assert set(mirrored) == {(s.resource_name, s.resource_id) for s in specs}
    for (name, rid), row in mirrored.items():
        truth = await sim.get("/_sim/resources", params={"company_id": 31, "resource_name": name})
        body = next(r["body"] for r in truth.json() if r["body"]["id"] == rid)
        # Kept as Procore answers it.
        assert row["data"] == body, name
        assert (row["procore_updated_at"] is not None) is (
            resources.REGISTRY[name].updated_field is not None and "updated_at" in body
        ), name
        assert row["deleted_at"] is None
    async with prt.sessions() as session:
        calls = (
            await session.execute(
                text("SELECT purpose, status, company_id FROM procore_calls ORDER BY id")
            )
        ).all()
    fetches = [c for c in calls if c.purpose == "fetch"]
    assert len(fetches) == len(specs)
    assert all(c.status == 200 and c.company_id == 31 for c in fetches)
    assert [c.purpose for c in calls].count("token") == 1


async def test_delete_soft_deletes(prt: Runtime, sim: httpx.AsyncClient) -> None:
    await store_events(prt, [Spec("RFIs", 5150)])
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
        (await sim.delete("/_sim/resources/RFIs/5150")).raise_for_status()
        await store_events(prt, [Spec("RFIs", 5150, event_type="delete")])
        await wait_for(lambda: all_final(prt), timeout=20)
    row = (await mirror_rows(prt))[("RFIs", 5150)]
    assert row["deleted_at"] is not None
    assert row["data"]["id"] == 5150  # the last known state is kept
    assert await statuses(prt) == {"done": 2}
