"""Webhook in → resource mirrored, through a real arq Worker against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime
from app.settings import Settings
from tests.pipeline.conftest import (
    Spec,
    all_final,
    running_worker,
    statuses,
    store_events,
    wait_for,
)

# One seeded resource of every type in the endpoint table (FACTS.md §4).
EVERY_TYPE = [
    Spec("RFIs", 5150),
    Spec("Submittals", 8812),
    Spec("Observation Items", 7001),
    Spec("Punch Items", 6001),
    Spec("Project Vendors", 4001),
    Spec("Company Users", 3001, project_id=None),
    Spec("Projects", 900, project_id=900),
]


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
    await store_events(prt, EVERY_TYPE)
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
    assert await statuses(prt) == {"done": len(EVERY_TYPE)}
    mirrored = await mirror_rows(prt)
    assert set(mirrored) == {(s.resource_name, s.resource_id) for s in EVERY_TYPE}
    for row in mirrored.values():
        assert row["data"]["id"] > 0
        assert row["procore_updated_at"] is not None
        assert row["deleted_at"] is None
    async with prt.sessions() as session:
        calls = (
            await session.execute(
                text("SELECT purpose, status, company_id FROM procore_calls ORDER BY id")
            )
        ).all()
    fetches = [c for c in calls if c.purpose == "fetch"]
    assert len(fetches) == len(EVERY_TYPE)
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
