"""`procore-hooks status` and `procore-hooks replay`, run as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta

from app.admin import console, service
from app.models import EventStatus, GateScope
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import add_events, add_gate, audit_rows, statuses_of
from tests.test_cli import run_cli


async def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": settings.database_url, "COLUMNS": "200"}
    return await asyncio.to_thread(run_cli, *args, **env)


async def test_status_shows_gates_and_queue(settings: Settings, db: Runtime) -> None:
    gate = await add_gate(db)
    await add_gate(
        db,
        scope=GateScope.PROJECT,
        project_id=900,
        diagnosis="no_project_access",
        remediation="add the service account to project 900",
    )
    await add_events(db, 4, status=EventStatus.PARKED, gate_id=gate.id)
    await add_events(
        db, 2, status=EventStatus.QUEUED, next_attempt_at=datetime.now(UTC) - timedelta(minutes=5)
    )

    shown = await cli(settings, "status")
    assert shown.returncode == 1, shown.stderr  # a gate is parked
    out = shown.stdout
    assert "Gates not open" in out
    assert "not_installed" in out
    assert "no_project_access" in out
    assert "install the app in company 31" in out
    assert "due now (queue depth)" in out
    assert "parked events" in out

    as_json = await cli(settings, "status", "--json")
    document = json.loads(as_json.stdout)
    assert document["summary"]["queue_depth"] == 2
    assert document["summary"]["parked_events"] == 4
    assert [g["scope"] for g in document["gates"]] == ["company", "project"]
    assert document["gates"][0]["parked_events"] == 4


# Remediations as the probes write them (app.gates.probes), and longer: they must never squeeze
# the table, whatever their length.
LONG_REMEDIATIONS = (
    "install the app in company 562949953 (Company Admin → App Management, from the "
    "Marketplace or as a custom app), then add the service account to the projects to sync "
    "and assign a permission template. Work resumes by itself once a check succeeds.",
    "add the service account (or the connected user) to project 562949953421 in company "
    "562949953 and assign a permission template; after an app update or reinstall this must "
    "be done again " + "(and again) " * 12,
)


async def test_status_fits_80_columns_with_details_under_the_table(
    settings: Settings, db: Runtime
) -> None:
    company = await add_gate(db, company_id=562949953, remediation=LONG_REMEDIATIONS[0])
    project = await add_gate(
        db,
        scope=GateScope.PROJECT,
        company_id=562949953,
        project_id=562949953421,
        diagnosis="no_project_access",
        remediation=LONG_REMEDIATIONS[1],
        parked_by="operator",
    )
    await add_events(db, 1234, status=EventStatus.PARKED, gate_id=company.id)

    shown = await asyncio.to_thread(
        run_cli, "status", DATABASE_URL=settings.database_url, COLUMNS="80"
    )
    assert shown.returncode == 1, shown.stderr
    lines = shown.stdout.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)

    # One line per gate in the table, every column on it.
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["gate", "scope"])
    company_row, project_row, after = lines[header + 1 : header + 4]
    for cell in (f"#{company.id}", "company 562949953", "parked", "not_installed", "1234", "in 4m"):
        assert cell in company_row, (cell, company_row)
    for cell in (f"#{project.id}", "project 562949953421", "no_project_access", "held"):
        assert cell in project_row, (cell, project_row)
    assert after.strip() == "", f"a row wrapped onto a second line: {after!r}"

    # Under the table: each gate's diagnosis, then its whole remediation, indented.
    details = shown.stdout[shown.stdout.index(company_row) + len(company_row) :]
    assert f"#{company.id} company 562949953: not_installed (403), parked 12m ago by policy" in (
        details
    )
    assert f"#{project.id} project 562949953/562949953421: no_project_access (403)" in details
    flowing = " ".join(line.strip() for line in details.splitlines() if line.startswith("  "))
    for remediation in LONG_REMEDIATIONS:
        assert " ".join(remediation.split()) in flowing
    assert f"POST /admin/gates/{project.id}/unpark releases it" in flowing

    as_json = await asyncio.to_thread(
        run_cli, "status", "--json", DATABASE_URL=settings.database_url, COLUMNS="80"
    )
    document = json.loads(as_json.stdout)
    assert [g["remediation"] for g in document["gates"]] == list(LONG_REMEDIATIONS)


async def test_replay_by_filter_with_progress_and_audit(settings: Settings, db: Runtime) -> None:
    dead = await add_events(db, 5, status=EventStatus.DEAD)
    other = await add_events(db, 2, status=EventStatus.DEAD, company_id=32)
    old = await add_events(
        db, 1, status=EventStatus.DEAD, received_at=datetime.now(UTC) - timedelta(days=3)
    )

    dry = await cli(settings, "replay", "--company", "31", "--since", "2d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "5 events match; 5 to replay" in dry.stdout
    assert await statuses_of(db, dead) == {EventStatus.DEAD}

    done = await cli(
        settings, "replay", "--status", "dead", "--company", "31", "--since", "2d", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "replayed 5 events" in done.stdout
    assert await statuses_of(db, dead) == {EventStatus.QUEUED}
    assert await statuses_of(db, other + old) == {EventStatus.DEAD}
    [action] = await audit_rows(db)
    assert action.action == "events_replay"
    assert action.actor.startswith("cli:")
    assert action.detail is not None
    assert action.detail["count"] == 5


async def test_replay_refuses_what_cannot_be_replayed(settings: Settings, db: Runtime) -> None:
    refused = await cli(settings, "replay", "--status", "queued", "--yes")
    assert refused.returncode == 2
    assert "not final" in refused.stderr
    needs_force = await cli(settings, "replay", "--status", "ignored", "--yes")
    assert needs_force.returncode == 2
    assert "needs force" in needs_force.stderr
    unknown = await cli(settings, "replay", "--status", "sideways")
    assert unknown.returncode == 2


async def test_bulk_replay_commits_batch_by_batch(db: Runtime) -> None:
    ids = await add_events(db, 7, status=EventStatus.DEAD)
    seen: list[int] = []
    total = await service.replay_matching(
        db.sessions,
        service.EventFilter(status=[EventStatus.DEAD]),
        force=False,
        actor="test",
        batch_size=3,
        progress=seen.append,
    )
    assert total == 7
    assert seen == [3, 6, 7]
    assert len(await audit_rows(db)) == 3  # one audit row per committed batch
    assert await statuses_of(db, ids) == {EventStatus.QUEUED}


def test_moments() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert console.moment("90m", now=now) == now - timedelta(minutes=90)
    assert console.moment("7d", now=now) == now - timedelta(days=7)
    assert console.moment("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert console.moment("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert console.moment(None) is None
