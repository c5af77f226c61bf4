"""Write-back over a real deployment (bench.cluster: private Postgres and Redis, the
simulator, the api, two worker processes): 1,000 write jobs over three companies, one without
the app; 5 % of Procore's answers lost after it acted; workers SIGKILLed mid-call; Procore's
spike limit on. Prints its evidence.

    PROOF=1 .venv/bin/pytest tests/proof/test_writes.py -s
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from app.registry import resources
from bench.cluster import Cluster
from tests.writes import workload

pytestmark = [pytest.mark.proof, pytest.mark.timeout(1200)]

UNINSTALLED = 33
COUNTS = {31: 380, 32: 310, 33: 310}
THRESHOLD = 3
MAX_KILLS = 10
ENV = {
    "PARK_THRESHOLD": str(THRESHOLD),
    "WRITE_SYNC_BATCH_SIZE": "25",
    "PROCORE_TIMEOUT_SECONDS": "3",
    "PROCESSING_LEASE_SECONDS": "10",
}
FINAL = {"succeeded", "failed", "cancelled"}


def test_a_thousand_writes_happen_once_in_order_through_kills_losses_and_an_install() -> None:
    with Cluster(workers=2, env_overrides=ENV) as c:
        asyncio.run(_write_back(c))


async def _rows(c: Cluster) -> list[Any]:
    found = await c.query("SELECT * FROM write_jobs ORDER BY id")
    return [SimpleNamespace(**dict(r)) for r in found]


async def _writes_to(c: Cluster, company: int) -> int:
    calls = await c.sim("GET", "/_sim/calls", params={"company_id": company})
    return sum(n for path, n in calls["by_path"].items() if path.endswith(("/sync", "/rfis")))


async def _write_back(c: Cluster) -> None:
    started = time.monotonic()
    c.deliver_to_api(concurrency=8)
    await c.sim("PUT", "/_sim/rate_limit", json={"hourly": 100_000, "spike": 25,
                                                 "spike_window_s": 10})  # fmt: skip
    await c.sim("PUT", "/_sim/faults", json={"lost_answer_rate": 0.05, "rng_seed": 19})
    jobs = workload.interleaved(COUNTS)
    async with httpx.AsyncClient(base_url=c.api_url, timeout=120) as api:
        answer = await api.post(
            "/admin/jobs/bulk",
            json={"jobs": jobs},
            headers={"Authorization": "Bearer proof-admin-token"},
        )
    assert answer.status_code == 202, answer.text

    async def others_final() -> bool:
        rows = await _rows(c)
        return all(r.status in FINAL for r in rows if r.company_id != UNINSTALLED)

    kills = 0
    while kills < MAX_KILLS and not await others_final():
        await asyncio.sleep(3)
        victim = kills % 2
        c.kill_worker(victim)
        kills += 1
        await asyncio.sleep(0.5)
        c.start_worker(victim)

    deadline = time.monotonic() + 600
    while not await others_final():
        assert time.monotonic() < deadline, "the installed companies did not finish"
        await asyncio.sleep(1)
    parked = [r for r in await _rows(c) if r.company_id == UNINSTALLED]
    refused = await _writes_to(c, UNINSTALLED)
    await asyncio.sleep(10)  # probes run; no write reaches the company
    while_parked = await _writes_to(c, UNINSTALLED)
    installed_at = time.monotonic()
    await c.sim("PUT", f"/_sim/companies/{UNINSTALLED}", json={"installed": True})
    while not all(r.status in FINAL for r in await _rows(c)):
        assert time.monotonic() < deadline + 300, "the installed company did not finish"
        await asyncio.sleep(1)
    drain_s = time.monotonic() - installed_at

    rows = await _rows(c)
    held = await c.sim("GET", "/_sim/resources")
    stats = await c.sim("GET", "/_sim/stats")
    calls = await c.sim("GET", "/_sim/calls")
    await c.drain(120)
    await asyncio.sleep(3)
    events = {r[0]: int(r[1]) for r in await c.query(
        "SELECT status::text, count(*) FROM events GROUP BY 1")}  # fmt: skip
    # Fetches of what the jobs wrote (the service's own upkeep, a resync after the install,
    # may fetch other resources of the company).
    fetched = {
        r[0] for r in await c.query("SELECT path FROM procore_calls WHERE purpose = 'fetch'")
    }
    written = {
        resources.show_path(resources.REGISTRY[r.resource_name], r.resource_id,
                            company_id=r.company_id, project_id=r.project_id)
        for r in rows if r.resource_id is not None
    }  # fmt: skip
    fetches = len(fetched & written)
    refusals = (
        await c.query(
            "SELECT count(*) FROM procore_calls WHERE purpose = 'write' AND company_id = $1"
            " AND status = 403",
            UNINSTALLED,
        )
    )[0][0]
    lookups = (await c.query("SELECT count(*) FROM procore_calls WHERE purpose = 'lookup'"))[0][0]
    found = workload.evidence(jobs, rows, held, stats["writes"])
    rate_limited = calls["by_status"].get("429", 0)
    print(f"\n=== write-back: {len(jobs)} jobs, {kills} worker SIGKILLs, 5 % answers lost")
    for key, value in {
        "evidence": found,
        "procore_calls": calls["total"],
        "429s": f"{rate_limited} ({100 * rate_limited / max(1, calls['total']):.2f} %)",
        "lost_answers": stats["faults"]["lost_answers"],
        "creates_looked_up": lookups,
        "writes_applied": stats["writes"],
        "uninstalled_parked_jobs": sum(r.status == "parked" for r in parked),
        "uninstalled_refused_writes": refusals,
        "uninstalled_write_calls": f"{refused} detected, {while_parked} after waiting",
        "drain_after_install_s": round(drain_s, 1),
        "echo_events": events,
        "fetches_of_written": f"{fetches} (all fetches: {len(fetched)})",
        "max_attempts": max(r.attempts for r in rows),
        "seconds": round(time.monotonic() - started, 1),
    }.items():
        print(f"  {key:<28} {value}")

    assert found.statuses == {"succeeded": len(jobs)}
    assert found.duplicates == found.missing == found.extra_creates == found.out_of_order == 0
    assert len(parked) == COUNTS[UNINSTALLED]
    assert all(r.status == "parked" for r in parked)
    assert refusals == THRESHOLD
    assert while_parked == refused, "no write reached the company while it was parked"
    for company in COUNTS:
        assert workload.in_submission_order(rows, company), company
    assert rate_limited < 0.01 * calls["total"]
    assert set(events) == {"ignored"}, "every echo of our own writes is ignored"
    assert fetches == 0
