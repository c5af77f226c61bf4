"""The install-aware gates end to end: the simulator, real Postgres, Redis and an arq Worker.

The simulator's per-company call counters are the evidence of how often a closed scope was
called. Time is compressed with short probe and window settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, statuses, store_events
from tests.harness import running_worker, sim_calls, sim_stats, wait_for

A, B, C = 33, 31, 32  # 33 is not installed in the simulator's seed
PROJECT = {A: 920, B: 900, C: 910}
THRESHOLD = 3
MAX_JOBS = 10

GATE_TIMINGS: dict[str, object] = {
    "park_threshold": THRESHOLD,
    "park_window_seconds": 60.0,
    "probe_base_seconds": 0.3,
    "probe_cap_seconds": 1.5,
    "release_batch_size": 200,
    "job_batch_size": 25,
}


async def create_rfis(sim: httpx.AsyncClient, company: int, first_id: int, count: int) -> None:
    answer = await sim.post(
        "/_sim/events",
        json={
            "company_id": company,
            "project_id": PROJECT[company],
            "resource_name": "RFIs",
            "resource_id": first_id,
            "event_type": "create",
            "count": count,
        },
    )
    answer.raise_for_status()


async def gate_row(runtime: Runtime, key: str) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(text("SELECT * FROM gates WHERE scope_key = :k"), {"k": key})
        ).first()


async def gate_state(runtime: Runtime, key: str) -> str | None:
    row = await gate_row(runtime, key)
    return None if row is None else str(row.state)


async def company_statuses(runtime: Runtime, company: int) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT status, count(*) FROM events WHERE company_id = :c GROUP BY status"),
            {"c": company},
        )
        return {str(s): int(n) for s, n in rows.all()}


async def audit_calls(runtime: Runtime, company: int) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT purpose, count(*) FROM procore_calls WHERE company_id = :c"
                " AND purpose <> 'token' GROUP BY purpose"
            ),
            {"c": company},
        )
        return {str(p): int(n) for p, n in rows.all()}


async def mirror_matches_simulator(runtime: Runtime, sim: httpx.AsyncClient, company: int) -> None:
    resources = (await sim.get("/_sim/resources", params={"company_id": company})).json()
    expected = {
        (r["resource_name"], r["body"]["id"]): r["body"]["updated_at"]
        for r in resources
        if r["resource_name"] == "RFIs"
    }
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT resource_name, resource_id, data->>'updated_at' AS updated_at"
                    " FROM resources WHERE company_id = :c AND deleted_at IS NULL"
                ),
                {"c": company},
            )
        ).all()
    mirrored = {(r.resource_name, r.resource_id): r.updated_at for r in rows}
    # Every mirrored resource is exactly the simulator's current state.
    for key, updated_at in mirrored.items():
        assert expected.get(key) == updated_at, key


async def test_storm_parks_only_the_uninstalled_company_and_releases_it_on_install(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    runtime = open_runtime(pipeline_settings(**GATE_TIMINGS), name="storm")
    per_company = 1000  # 3,000 events over the three companies
    try:
        for company in (A, B, C):
            await create_rfis(sim, company, 100_000 + company * 1000, 200)
        (await sim.delete("/_sim/calls")).raise_for_status()

        specs = [
            Spec("RFIs", 100_000 + company * 1000 + i % 200, company, PROJECT[company])
            for i in range(per_company)
            for company in (A, B, C)
        ]
        async with running_worker(runtime.settings, max_jobs=MAX_JOBS):
            # Events arrive while the worker runs, interleaved across the three companies.
            for start in range(0, len(specs), 100):
                await store_events(runtime, specs[start : start + 100])
                await asyncio.sleep(0.05)

            async def others_done() -> bool:
                done_b = (await company_statuses(runtime, B)).get("done", 0)
                done_c = (await company_statuses(runtime, C)).get("done", 0)
                return done_b == per_company and done_c == per_company

            await wait_for(others_done, timeout=60)
            await wait_for(
                lambda: _has(runtime, A, "parked", per_company), timeout=30, interval=0.2
            )
            gate = await gate_row(runtime, f"company:{A}")
            assert gate.state == "parked"
            assert gate.diagnosis == "not_installed"
            assert f"install the app in company {A}" in gate.remediation

            # Let a few probes run against the still-uninstalled company.
            await asyncio.sleep(3)
            while_parked = await sim_calls(sim, company_id=A)
            ours = await audit_calls(runtime, A)
            assert while_parked["total"] == sum(ours.values()), (while_parked, ours)
            # The bound: N signals (+ calls already in flight: one per job, since an unproven
            # company is called one call at a time) + diagnosis + one call per probe.
            assert ours.get("fetch", 0) <= THRESHOLD + MAX_JOBS, ours
            assert ours.get("diagnose", 0) <= 2, ours
            assert ours.get("probe", 0) >= 1, ours
            assert set(while_parked["by_status"]) == {"403"}

            # Install: within one probe interval the gate opens and every event is done.
            (await sim.put(f"/_sim/companies/{A}", json={"installed": True})).raise_for_status()
            installed_at = time.monotonic()
            await wait_for(
                lambda: _state_is(runtime, f"company:{A}", "open"), timeout=10, interval=0.1
            )
            assert time.monotonic() - installed_at < GATE_TIMINGS["probe_cap_seconds"] + 2.5  # type: ignore[operator]
            await wait_for(lambda: _has(runtime, A, "done", per_company), timeout=60)

        assert await statuses(runtime) == {"done": per_company * 3}
        stats = await sim_stats(sim)
        assert stats["rate_limited"] == 0
        for company in (A, B, C):
            await mirror_matches_simulator(runtime, sim, company)
    finally:
        await runtime.close()


async def test_released_backlog_does_not_starve_other_companies(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    runtime = open_runtime(
        pipeline_settings(**{**GATE_TIMINGS, "dispatch_per_company": 20}), name="fairness"
    )
    try:
        await create_rfis(sim, A, 200_000, 300)
        await create_rfis(sim, B, 300_000, 20)
        # Slow Procore down a little so A's backlog takes a while to drain.
        (await sim.put("/_sim/faults", json={"latency_ms": 20, "company_id": A})).raise_for_status()
        backlog = [Spec("RFIs", 200_000 + i, A, PROJECT[A]) for i in range(300)]
        async with running_worker(runtime.settings, max_jobs=MAX_JOBS):
            await store_events(runtime, backlog)
            await wait_for(lambda: _has(runtime, A, "parked", 290), timeout=30, interval=0.2)
            (await sim.put(f"/_sim/companies/{A}", json={"installed": True})).raise_for_status()
            await wait_for(
                lambda: _state_is(runtime, f"company:{A}", "open"), timeout=10, interval=0.1
            )
            # A's backlog is draining; new events for B arrive now.
            started = time.monotonic()
            await store_events(
                runtime, [Spec("RFIs", 300_000 + i, B, PROJECT[B]) for i in range(20)]
            )
            await wait_for(lambda: _has(runtime, B, "done", 20), timeout=30, interval=0.1)
            b_latency = time.monotonic() - started
            a_left = sum(n for s, n in (await company_statuses(runtime, A)).items() if s != "done")
            await wait_for(lambda: _has(runtime, A, "done", 300), timeout=90)
        assert a_left > 0, "A's backlog had drained before B's events were served"
        assert b_latency < 5.0, b_latency
    finally:
        await runtime.close()


async def test_unpermitted_project_parks_alone_and_releases_when_permitted(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    # Company 31 is installed; its project 902 is not permitted to the app in the seed.
    runtime = open_runtime(pipeline_settings(**GATE_TIMINGS), name="permission")
    try:
        await sim.post(
            "/_sim/events",
            json={
                "company_id": 31,
                "project_id": 902,
                "resource_name": "RFIs",
                "resource_id": 400_000,
                "event_type": "create",
                "count": 30,
            },
        )
        await create_rfis(sim, B, 410_000, 30)
        blocked = [Spec("RFIs", 400_000 + i, 31, 902) for i in range(30)]
        flowing = [Spec("RFIs", 410_000 + i, 31, 900) for i in range(30)]
        async with running_worker(runtime.settings, max_jobs=MAX_JOBS):
            await store_events(runtime, blocked + flowing)
            await wait_for(lambda: _state_is(runtime, "project:31:902", "parked"), timeout=20)
            await wait_for(
                lambda: _diagnosed(runtime, "project:31:902", "no_project_access"), timeout=20
            )
            await wait_for(lambda: _project_has(runtime, 900, "done", 30), timeout=30)
            await wait_for(lambda: _project_has(runtime, 902, "parked", 27), timeout=30)
            gate = await gate_row(runtime, "project:31:902")
            assert "project 902" in gate.remediation
            assert "permission template" in gate.remediation
            assert await gate_state(runtime, "company:31") in (None, "open")

            await sim.put("/_sim/companies/31/projects/902", json={"permitted": True})
            await wait_for(lambda: _project_has(runtime, 902, "done", 30), timeout=30)
        assert await statuses(runtime) == {"done": 60}
    finally:
        await runtime.close()


async def test_revoked_credential_parks_the_credential_not_the_companies(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    runtime = open_runtime(pipeline_settings(**GATE_TIMINGS), name="revoked")
    try:
        await create_rfis(sim, B, 500_000, 20)
        await create_rfis(sim, C, 510_000, 20)
        async with running_worker(runtime.settings, max_jobs=MAX_JOBS):
            # The credential works first (a token is minted and cached), then is revoked.
            await store_events(runtime, [Spec("RFIs", 500_000, B, PROJECT[B])])
            await wait_for(lambda: _has(runtime, B, "done", 1), timeout=20)
            (await sim.post("/_sim/clients/sim-client/revoke")).raise_for_status()
            await store_events(
                runtime,
                [Spec("RFIs", 500_000 + i, B, PROJECT[B]) for i in range(1, 20)]
                + [Spec("RFIs", 510_000 + i, C, PROJECT[C]) for i in range(20)],
            )
            await wait_for(lambda: _credential_gate(runtime, "parked"), timeout=30)
            cred = await _credential_gate_row(runtime)
            assert cred.diagnosis == "credential_invalid"
            assert "re-authenticate" in cred.remediation
            await wait_for(lambda: _parked_total(runtime, 39), timeout=30)
            async with runtime.sessions() as session:
                holders = (
                    await session.execute(
                        text(
                            "SELECT DISTINCT g.scope FROM events e JOIN gates g"
                            " ON g.id = e.gate_id WHERE e.status = 'parked'"
                        )
                    )
                ).scalars()
                assert list(holders) == ["credential"]
                wrongly = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM gates WHERE scope = 'company'"
                            " AND state = 'parked'"
                        )
                    )
                ).scalar_one()
            assert wrongly == 0, "no company may be called not installed"

            # Reconnect (the client is registered again): the probe opens it, work resumes.
            (
                await sim.post(
                    "/_sim/clients",
                    json={"client_id": "sim-client", "client_secret": "sim-secret"},
                )
            ).raise_for_status()
            await wait_for(lambda: _has(runtime, C, "done", 20), timeout=30)
            await wait_for(lambda: _has(runtime, B, "done", 20), timeout=30)
        assert await statuses(runtime) == {"done": 40}
    finally:
        await runtime.close()


async def test_flaky_401s_and_isolated_403s_park_nothing(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    runtime = open_runtime(pipeline_settings(**GATE_TIMINGS), name="flaky")
    try:
        await create_rfis(sim, B, 600_000, 60)
        async with running_worker(runtime.settings, max_jobs=MAX_JOBS):
            for round_ in range(3):
                # Every token dies between rounds: each 401 is fixed by one renewal.
                (await sim.post("/_sim/tokens/expire")).raise_for_status()
                first = 600_000 + round_ * 20
                await store_events(
                    runtime, [Spec("RFIs", first + i, B, PROJECT[B]) for i in range(20)]
                )
                done = 20 * (round_ + 1)

                async def caught_up(n: int = done) -> bool:
                    return await _has(runtime, B, "done", n)

                await wait_for(caught_up, timeout=20)

            # Two stray 403s (below the threshold of three), then normal answers again.
            project = f"/_sim/companies/{B}/projects/{PROJECT[B]}"
            (await sim.put(project, json={"permitted": False})).raise_for_status()
            await store_events(
                runtime, [Spec("RFIs", 600_000 + i, B, PROJECT[B]) for i in range(THRESHOLD - 1)]
            )
            await wait_for(
                lambda: _gate_signals(runtime, f"project:{B}:{PROJECT[B]}", THRESHOLD - 1),
                timeout=20,
            )
            (await sim.put(project, json={"permitted": True})).raise_for_status()
            await store_events(runtime, [Spec("RFIs", 600_050, B, PROJECT[B])])
            await wait_for(lambda: _has(runtime, B, "done", 61), timeout=20)

        async with runtime.sessions() as session:
            parked = (
                await session.execute(text("SELECT count(*) FROM gates WHERE state = 'parked'"))
            ).scalar_one()
        assert parked == 0
        assert await gate_state(runtime, f"project:{B}:{PROJECT[B]}") == "open"
        stats = await sim_stats(sim)
        assert stats["invalid_grant"] == 0
    finally:
        await runtime.close()


async def _has(runtime: Runtime, company: int, status: str, count: int) -> bool:
    return (await company_statuses(runtime, company)).get(status, 0) >= count


async def _project_has(runtime: Runtime, project: int, status: str, count: int) -> bool:
    async with runtime.sessions() as session:
        found = (
            await session.execute(
                text("SELECT count(*) FROM events WHERE project_id = :p AND status = :s"),
                {"p": project, "s": status},
            )
        ).scalar_one()
    return int(found) >= count


async def _state_is(runtime: Runtime, key: str, state: str) -> bool:
    return await gate_state(runtime, key) == state


async def _diagnosed(runtime: Runtime, key: str, diagnosis: str) -> bool:
    row = await gate_row(runtime, key)
    return row is not None and row.diagnosis == diagnosis


async def _gate_signals(runtime: Runtime, key: str, signals: int) -> bool:
    row = await gate_row(runtime, key)
    return row is not None and row.signals >= signals


async def _credential_gate_row(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(text("SELECT * FROM gates WHERE scope = 'credential'"))
        ).first()


async def _credential_gate(runtime: Runtime, state: str) -> bool:
    row = await _credential_gate_row(runtime)
    return row is not None and row.state == state


async def _parked_total(runtime: Runtime, count: int) -> bool:
    return (await statuses(runtime)).get("parked", 0) >= count
