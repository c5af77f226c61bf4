"""Resync against the simulator: unchanged → no mirror writes; absent from every list →
deleted only once Procore confirms it; inactive → kept, shown inactive; changed → updated;
a project permitted later → backfilled; a run interrupted mid-way → resumed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.gates import service as gates
from app.registry import resources
from app.resync import service as resync
from app.runtime import Runtime, open_runtime
from app.schedule import runs
from app.settings import Settings
from app.subscriptions import service as subscriptions
from tests.harness import running_worker, sim_calls, start_worker, wait_for


async def mirror_state(
    runtime: Runtime, company_id: int
) -> dict[tuple[str, int], tuple[int, bool]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT resource_name, resource_id, change_seq, deleted_at IS NOT NULL"
                " FROM resources WHERE company_id = :c"
            ),
            {"c": company_id},
        )
        return {(r[0], int(r[1])): (int(r[2]), bool(r[3])) for r in rows.all()}


async def resync_now(runtime: Runtime, company_id: int, **scope: object) -> runs.RunView:
    async with runtime.sessions() as session, session.begin():
        run_id = await runs.request(session, company_id, reason="test", **scope)  # type: ignore[arg-type]
    view = await resync.run(runtime, run_id)
    assert view is not None
    return view


async def test_unchanged_resync_writes_nothing_and_changes_are_reconciled(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    runtime = open_runtime(pipeline_settings(resync_page_size=2), name="resync-test")
    try:
        first = await resync_now(runtime, 31)
        assert first.status == "done", first
        before = await mirror_state(runtime, 31)
        # Seeded: 3 RFIs in permitted projects 900/901 (5180 is in 902, not permitted).
        assert {k for k in before if k[0] == "RFIs"} == {
            ("RFIs", 5150),
            ("RFIs", 5151),
            ("RFIs", 5152),
        }
        assert first.progress["written"] == len(before)

        second = await resync_now(runtime, 31)
        assert second.status == "done"
        assert second.progress["written"] == 0
        assert second.progress["absent"] == 0
        assert await mirror_state(runtime, 31) == before  # change_seq unchanged: no writes

        # Changed, created and deleted in Procore without any webhook (nobody subscribed).
        await sim.post(
            "/_sim/events",
            json={
                "company_id": 31,
                "project_id": 900,
                "resource_name": "RFIs",
                "resource_id": 5150,
                "event_type": "update",
            },
        )
        await sim.post(
            "/_sim/events",
            json={
                "company_id": 31,
                "project_id": 901,
                "resource_name": "RFIs",
                "resource_id": 5190,
                "event_type": "create",
            },
        )
        (await sim.delete("/_sim/resources/RFIs/5151")).raise_for_status()
        third = await resync_now(runtime, 31)
        assert third.progress["written"] == 2
        # Absent from the lists is not deleted yet: the pipeline asks Procore first.
        assert third.progress["absent"] == 1
        assert (await mirror_state(runtime, 31))[("RFIs", 5151)][1] is False
        async with running_worker(runtime.settings):
            await wait_for(lambda: absent_checked(runtime), timeout=20)
        after = await mirror_state(runtime, 31)
        assert after[("RFIs", 5150)][0] > before[("RFIs", 5150)][0]
        assert after[("RFIs", 5151)][1] is True
        assert ("RFIs", 5190) in after
        unchanged = {k: v for k, v in before.items() if k not in {("RFIs", 5150), ("RFIs", 5151)}}
        assert {k: after[k] for k in unchanged} == unchanged
    finally:
        await runtime.close()


async def test_a_resync_mirrors_every_registered_type_and_past_days_of_daily_logs(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """Every type of the registry, listed as it says (inactive lists, day ranges: daily-log
    lists answer today's logs unless given dates, `tutorials/daily_logs.md`)."""
    runtime = open_runtime(pipeline_settings(), name="resync-every-type-test")
    try:
        view = await resync_now(runtime, 31)
        assert view.status == "done", view
        mirrored = await mirror_state(runtime, 31)
        assert {name for name, _ in mirrored} == set(resources.NAMES)
        # Seeded 5, 20 and 40 days back; 10003 is pending (not approved).
        for key in (("Manpower Logs", 10002), ("Manpower Logs", 10003), ("Work Logs", 10201),
                    ("Accident Logs", 10601), ("Timecard Entries", 10801)):  # fmt: skip
            assert key in mirrored, key
    finally:
        await runtime.close()


async def absent_checked(runtime: Runtime) -> bool:
    async with runtime.sessions() as session:
        pending = await session.execute(
            text(
                "SELECT count(*) FROM events WHERE payload_version = 'resync'"
                " AND status NOT IN ('done', 'skipped', 'dead')"
            )
        )
        return int(pending.scalar_one()) == 0


async def test_inactive_projects_and_users_are_kept_and_shown_inactive(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    """Procore's default lists answer active records only (FACTS.md §4; OpenAPI
    RestV10ProjectsGet "Return a list of active Projects", RestV10CompaniesCompanyIdUsersGet
    "active users … see List Company Inactive Users"): a resync lists the inactive ones too
    (`filters[by_status]=All`, RestV10CompaniesCompanyIdUsersInactiveGet) and never takes
    "absent from an active-only list" for deleted."""
    runtime = open_runtime(
        pipeline_settings(sync_resources="Projects,Company Users,Company Vendors"),
        name="resync-inactive-test",
    )
    try:
        first = await resync_now(runtime, 31)
        assert first.status == "done", first
        mirrored = await mirror_state(runtime, 31)
        # Seeded inactive: project 903, user 3004, vendor 4102.
        for key in (("Projects", 903), ("Company Users", 3004), ("Company Vendors", 4102)):
            assert key in mirrored, key
            assert mirrored[key][1] is False, key
        # Made inactive in Procore since: user 3001 and project 901.
        for name, rid, field in (("Company Users", 3001, "is_active"), ("Projects", 901, "active")):
            (
                await sim.post(
                    "/_sim/events",
                    json={
                        "company_id": 31,
                        "resource_name": name,
                        "resource_id": rid,
                        "fields": {field: False},
                    },
                )
            ).raise_for_status()
        again = await resync_now(runtime, 31)
        assert again.status == "done"
        assert again.progress["absent"] == 0
        after = await mirror_state(runtime, 31)
        assert all(not deleted for _, deleted in after.values())
        async with runtime.sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT resource_name, data FROM resources WHERE company_id = 31"
                    " AND resource_id IN (3001, 901) AND resource_name IN"
                    " ('Company Users', 'Projects')"
                )
            )
            shown: dict[str, Any] = {str(name): data for name, data in rows.all()}
        assert shown["Company Users"]["is_active"] is False
        assert shown["Projects"]["active"] is False
    finally:
        await runtime.close()


async def test_a_project_permitted_later_is_backfilled(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings(public_base_url="http://receiver.test")
    runtime = open_runtime(settings, name="resync-project-test")
    try:
        async with running_worker(settings, subscriptions=True):
            # First sync of the company: its install resync is requested and run. (The
            # worker's discovery finds company 32 installed too, and does the same for it.)
            first = await subscriptions.sync_company(runtime, 31, on_demand=True)
            assert first.ok
            assert first.new_projects == []

            async def all_done() -> bool:
                async with runtime.sessions() as session:
                    statuses = await session.execute(text("SELECT status FROM resync_runs"))
                    found = [s for (s,) in statuses.all()]
                    return bool(found) and set(found) == {"done"}

            await wait_for(all_done, timeout=30, interval=0.2)
            assert ("RFIs", 5180) not in await mirror_state(runtime, 31)

            # The company admin adds project 902 to the app's permitted projects.
            (
                await sim.put("/_sim/companies/31/projects/902", json={"permitted": True})
            ).raise_for_status()
            second = await subscriptions.sync_company(runtime, 31, on_demand=True)
            assert second.ok
            assert second.changes == []
            assert second.new_projects == [902]
            await wait_for(all_done, timeout=30, interval=0.2)
            assert ("RFIs", 5180) in await mirror_state(runtime, 31)

            # A project gate reopening (access restored) backfills that project too.
            async with runtime.sessions() as session, session.begin():
                gate_id = (
                    await session.execute(
                        text(
                            "INSERT INTO gates (scope_key, scope, company_id, project_id, state,"
                            " parked_by) VALUES ('project:31:900', 'project', 31, 900, 'parked',"
                            " 'policy') RETURNING id"
                        )
                    )
                ).scalar_one()
            async with runtime.sessions() as session, session.begin():
                assert await gates.operator_unpark(
                    session, gate_id, reason="access restored", threshold=3
                )
            await wait_for(all_done, timeout=30, interval=0.2)
        async with runtime.sessions() as session:
            reasons = (
                await session.execute(
                    text(
                        "SELECT reason, project_id FROM resync_runs WHERE company_id = 31"
                        " ORDER BY id"
                    )
                )
            ).all()
        assert [tuple(r) for r in reasons] == [
            ("install", None),
            ("project_new", 902),
            ("project_opened", 900),
        ]
    finally:
        await runtime.close()


async def test_an_interrupted_resync_resumes_and_completes(
    clean: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    made = await sim.post(
        "/_sim/events",
        json={
            "company_id": 32,
            "project_id": 910,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": 300,
        },
    )
    made.raise_for_status()
    # Slow answers, so the worker can be killed mid-run.
    await sim.put("/_sim/faults", json={"latency_ms": 40, "company_id": 32})
    settings = pipeline_settings(resync_page_size=10, resync_lease_seconds=2.0)
    runtime = open_runtime(settings, name="resync-resume-test")
    try:
        async with runtime.sessions() as session, session.begin():
            # Installed long ago: the workers' install discovery finds the companies, but
            # asks for no install backfill (which would list these RFIs too).
            await session.execute(
                text(
                    "INSERT INTO company_hooks (company_id, installed_at, synced_at)"
                    " VALUES (31, now(), now()), (32, now(), now())"
                )
            )
            run_id = await runs.request(session, 32, reason="test", resource_name="RFIs")
        killed = start_worker(settings, subscriptions=True)

        async def some_pages() -> bool:
            async with runtime.sessions() as session:
                view = await runs.get(session, run_id)
            return view is not None and view.progress["pages"] >= 8

        await wait_for(some_pages, timeout=30, interval=0.05)
        await killed.stop(graceful=False)  # a killed worker: the run keeps its lease
        async with runtime.sessions() as session:
            stopped = await runs.get(session, run_id)
        assert stopped is not None
        assert stopped.status == "running"
        pages_before = stopped.progress["pages"]
        assert pages_before < 31

        async with running_worker(settings, subscriptions=True):

            async def finished() -> bool:
                async with runtime.sessions() as session:
                    view = await runs.get(session, run_id)
                return view is not None and view.status == "done"

            await wait_for(finished, timeout=40, interval=0.1)
        async with runtime.sessions() as session:
            done = await runs.get(session, run_id)
        assert done is not None
        assert done.attempts == 2
        # 301 RFIs in 31 pages, each written once: the second worker resumed, not restarted.
        assert done.progress["pages"] == 31
        assert done.progress["listed"] == 301
        mirrored = await mirror_state(runtime, 32)
        assert sum(1 for k in mirrored if k[0] == "RFIs") == 301
        calls = await sim_calls(sim, company_id=32)
        rfi_pages = calls["by_route"].get("/rest/v1.0/projects/{id}/rfis", 0)
        assert rfi_pages <= 31 + 1  # at most the page in flight when killed is asked again
    finally:
        await sim.delete("/_sim/faults")
        await runtime.close()
        await asyncio.sleep(0)
