"""`procore-hooks jobs ...`, run as an operator runs them: the same checks, the same audit."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select, update

from app.models import JobStatus, WriteJob
from app.runtime import Runtime
from app.settings import Settings
from tests.factories import audit_rows
from tests.operator.test_cli_operator import cli

VENDOR = {
    "company_id": 31,
    "resource_name": "Company Vendors",
    "operation": "create",
    "origin_id": "erp-cli",
    "payload": {"name": "Acme"},
    "idempotency_key": "cli-1",
}


async def test_submit_show_list_cancel_replay_from_the_command_line(
    settings: Settings, db: Runtime, tmp_path: Path
) -> None:
    source = tmp_path / "jobs.json"
    source.write_text(json.dumps([VENDOR, {**VENDOR, "idempotency_key": "cli-2",
                                           "origin_id": "erp-cli-2"}]))  # fmt: skip

    submitted = await cli(settings, "jobs", "submit", str(source))
    assert submitted.returncode == 0, submitted.stderr
    accepted = json.loads(submitted.stdout)
    assert [a["status"] for a in accepted] == ["queued", "queued"]
    first = accepted[0]["id"]

    shown = json.loads((await cli(settings, "jobs", "show", str(first))).stdout)
    listed = await cli(settings, "jobs", "list", "--company", "31")
    cancelled = await cli(settings, "jobs", "cancel", str(first))
    again = await cli(settings, "jobs", "cancel", str(first))
    replayed = await cli(settings, "jobs", "replay", str(first))
    events = json.loads((await cli(settings, "jobs", "events")).stdout)

    assert shown["origin_id"] == "erp-cli"
    assert shown["submitted_by"].startswith("cli:")
    assert listed.returncode == 0
    assert "Company Vendors" in listed.stdout
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    assert again.returncode == 2
    assert "only queued" in again.stderr
    assert json.loads(replayed.stdout)["status"] == "queued"
    assert [e["kind"] for e in events["items"]] == ["job.cancelled"]
    actions = [(a.action, a.actor.startswith("cli:")) for a in await audit_rows(db)]
    assert actions == [("jobs_submit", True), ("job_cancel", True), ("job_replay", True)]


async def test_a_file_with_a_job_that_cannot_be_sent_queues_nothing(
    settings: Settings, db: Runtime, tmp_path: Path
) -> None:
    source = tmp_path / "jobs.json"
    bad = {**VENDOR, "idempotency_key": "cli-3", "origin_id": None}
    source.write_text(json.dumps({"jobs": [VENDOR, bad]}))

    refused = await cli(settings, "jobs", "submit", str(source))
    not_json = tmp_path / "broken.json"
    not_json.write_text("{nope")
    broken = await cli(settings, "jobs", "submit", str(not_json))

    assert refused.returncode == 2
    assert "jobs[1].origin_id: required" in refused.stderr
    assert broken.returncode == 2
    assert "not JSON" in broken.stderr
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(WriteJob))).scalar() == 0
    assert await audit_rows(db) == []


async def test_resolve_needs_exactly_one_answer(
    settings: Settings, db: Runtime, tmp_path: Path
) -> None:
    source = tmp_path / "job.json"
    source.write_text(json.dumps(VENDOR))
    [accepted] = json.loads((await cli(settings, "jobs", "submit", str(source))).stdout)
    async with db.sessions() as session, session.begin():
        await session.execute(
            update(WriteJob).where(WriteJob.id == accepted["id"]).values(status=JobStatus.IN_DOUBT)
        )

    neither = await cli(settings, "jobs", "resolve", str(accepted["id"]))
    resolved = await cli(settings, "jobs", "resolve", str(accepted["id"]), "--resource-id", "7")

    assert neither.returncode == 2
    assert json.loads(resolved.stdout)["status"] == "succeeded"
    assert json.loads(resolved.stdout)["resource_id"] == 7
