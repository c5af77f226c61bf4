"""The CLI's write-job commands (`procore-hooks jobs ...`): the same audited admin service
functions as `/admin/jobs`, straight over Postgres."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from app import audit
from app.admin import service
from app.db import SessionFactory, sessions_for
from app.logs import configure_logging
from app.models import JobStatus
from app.settings import Settings
from app.writes import policy
from app.writes import service as writes
from app.writes.views import BULK_MAX_JOBS, JobBulkIn, JobIn


class Refused(Exception):
    """What the operator asked cannot be done (the message says why; exit code 2)."""


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    # Log lines go to stderr: stdout carries the JSON the commands print.
    configure_logging(settings)
    async with sessions_for(settings) as sessions:
        yield sessions


def read_jobs(text: str, settings: Settings) -> list[policy.Submission]:
    """Jobs from JSON: one object, a list of them, or `{"jobs": [...]}` (at most
    BULK_MAX_JOBS), each checked as the admin API checks it."""
    try:
        document: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Refused(f"not JSON: {exc}") from exc
    if isinstance(document, dict) and "jobs" not in document:
        document = {"jobs": [document]}
    elif isinstance(document, list):
        document = {"jobs": document}
    try:
        bulk = JobBulkIn.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Refused(f"{where}: {first['msg']} (at most {BULK_MAX_JOBS} jobs)") from exc
    submissions = []
    for index, job in enumerate(bulk.jobs):
        try:
            submissions.append(_check(job, settings))
        except policy.Refused as exc:
            raise Refused(f"jobs[{index}].{exc.field}: {exc.message}") from exc
    return submissions


def _check(job: JobIn, settings: Settings) -> policy.Submission:
    return policy.check(
        company_id=job.company_id,
        project_id=job.project_id,
        resource_name=job.resource_name,
        operation=job.operation,
        resource_id=job.resource_id,
        origin_id=job.origin_id,
        payload=job.payload,
        idempotency_key=job.idempotency_key,
        payload_max_bytes=settings.write_payload_max_bytes,
    )


async def submit(settings: Settings, submissions: list[policy.Submission]) -> list[dict[str, Any]]:
    async with _sessions(settings) as sessions, sessions() as session, session.begin():
        try:
            accepted = await service.submit_jobs(session, submissions, actor=audit.cli_actor())
        except writes.KeyReused as exc:
            raise Refused(f"jobs[{exc.index}]: {exc}") from exc
    return [a.model_dump(mode="json") for a in accepted]


async def listing(
    settings: Settings,
    *,
    statuses: list[JobStatus],
    company_id: int | None,
    resource_name: str | None,
    limit: int,
    as_json: bool,
    out: Console,
) -> None:
    where = writes.JobFilter(status=statuses, company_id=company_id, resource_name=resource_name)
    async with _sessions(settings) as sessions, sessions() as session:
        page = await service.list_jobs(session, where, after=None, limit=limit)
    if as_json:
        out.print_json(orjson.dumps(page.model_dump(mode="json")).decode())
        return
    table = Table(title="Write jobs, newest first", title_justify="left", box=None)
    for name in ("job", "company", "resource", "op", "status", "tries", "answer"):
        table.add_column(name, justify="right" if name in ("job", "tries") else "left")
    for job in page.items:
        answer = "" if job.last_status is None else str(job.last_status)
        if job.last_error:
            answer += f" {job.last_error}"
        table.add_row(
            f"#{job.id}",
            str(job.company_id),
            job.resource_name,
            job.operation.value,
            job.status.value,
            str(job.attempts),
            answer[:60],
        )
    out.print(table)
    if page.next_cursor is not None:
        out.print(f"(the newest {len(page.items)}; GET /admin/jobs pages through the rest)")


async def show(settings: Settings, job_id: int) -> dict[str, Any] | None:
    async with _sessions(settings) as sessions, sessions() as session:
        job = await service.get_job(session, job_id)
    return None if job is None else job.model_dump(mode="json")


async def act(
    settings: Settings,
    job_id: int,
    action: service.JobAction,
    *,
    force: bool = False,
    resource_id: int | None = None,
) -> dict[str, Any]:
    async with _sessions(settings) as sessions, sessions() as session, session.begin():
        try:
            job = await service.act_on_job(
                session,
                job_id,
                action,
                actor=audit.cli_actor(),
                force=force,
                resource_id=resource_id,
            )
        except writes.ActionRefused as exc:
            raise Refused(exc.message) from exc
    if job is None:
        raise Refused(f"job {job_id} not found")
    return job.model_dump(mode="json")


async def events(settings: Settings, *, after: str | None, limit: int) -> dict[str, Any]:
    async with _sessions(settings) as sessions:
        try:
            page = await service.job_events(sessions, after=after, limit=limit)
        except ValueError as exc:
            raise Refused(f"after: {exc}") from exc
    return page.model_dump(mode="json")


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
