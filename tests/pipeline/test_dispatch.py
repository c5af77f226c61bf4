"""The dispatcher and the claim: fair shares, leases, fencing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import text

from app.events import dispatch
from app.events.service import process_batch
from app.runtime import Runtime
from tests.factories import Spec, store_events


async def take(runtime: Runtime, **kwargs: Any) -> list[dispatch.DueRow]:
    params: dict[str, Any] = {
        "total": 100,
        "per_company": 100,
        "lease_seconds": 30.0,
        "max_backlog": 10_000,
    }
    params.update(kwargs)
    async with runtime.sessions() as session, session.begin():
        return await dispatch.take_due(session, **params)


async def test_companies_take_turns_when_the_tick_cannot_take_all(prt: Runtime) -> None:
    # One company's storm of 300 events, and three quiet companies with 5 each.
    await store_events(prt, [Spec("RFIs", n, company_id=31) for n in range(300)])
    for company in (40, 41, 42):
        await store_events(prt, [Spec("RFIs", n, company_id=company) for n in range(5)])
    taken = Counter(r.company_id for r in await take(prt, total=40, per_company=100))
    assert taken == {31: 25, 40: 5, 41: 5, 42: 5}


async def test_per_company_share_and_backlog_cap(prt: Runtime) -> None:
    await store_events(prt, [Spec("RFIs", n) for n in range(50)])
    assert len(await take(prt, per_company=20)) == 20
    # 20 rows now wait in the queue unclaimed: the backlog cap leaves room for 5 more.
    assert len(await take(prt, max_backlog=25)) == 5
    # Leased rows are not handed out again while the lease holds.
    assert len(await take(prt)) == 25
    assert await take(prt) == []


async def test_an_expired_processing_lease_is_handed_out_again_and_fences_the_late_worker(
    prt: Runtime, sim: Any
) -> None:
    [event_id] = await store_events(prt, [Spec("RFIs", 5150)])
    async with prt.sessions() as session, session.begin():
        # A worker claimed it (claims = 1) and died; its lease has run out.
        await session.execute(
            text(
                "UPDATE events SET status = 'processing', claims = 1,"
                " locked_until = now() - interval '1 second'"
            )
        )
    [row] = await take(prt)
    assert row.id == event_id
    async with prt.sessions() as session:
        status = (await session.execute(text("SELECT status FROM events"))).scalar_one()
    assert status == "retrying"
    # The late worker (claim 1) cannot write any more; a new claim (2) processes it.
    async with prt.sessions() as session, session.begin():
        late = await session.execute(
            text(
                "UPDATE events SET status = 'dead' WHERE id = :id AND claims = 1"
                " AND status = 'processing'"
            ),
            {"id": event_id},
        )
        assert late.rowcount == 0  # type: ignore[attr-defined]
    assert await process_batch(prt, [event_id]) == 1
    async with prt.sessions() as session:
        done = (await session.execute(text("SELECT status, claims FROM events"))).one()
    assert tuple(done) == ("done", 2)


async def test_a_batch_runs_once_however_often_it_is_handed_out(prt: Runtime, sim: Any) -> None:
    ids = await store_events(prt, [Spec("RFIs", 5150), Spec("RFIs", 5151), Spec("RFIs", 5152)])
    results = await asyncio.gather(*(process_batch(prt, ids) for _ in range(5)))
    assert sum(results) == 3
    assert await process_batch(prt, ids) == 0
    async with prt.sessions() as session:
        claims = (await session.execute(text("SELECT sum(claims) FROM events"))).scalar_one()
    assert claims == 3


def test_batches_keep_one_company_per_batch_and_resources_together() -> None:
    rows = [
        dispatch.DueRow(i, company, "RFIs", rid)
        for i, (company, rid) in enumerate([(1, 9), (2, 5), (1, 3), (1, 9), (2, 5), (1, 3)])
    ]
    assert dispatch.batches(rows, 2) == [[2, 5], [0, 3], [1, 4]]
