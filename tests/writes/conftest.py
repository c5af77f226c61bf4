"""Write jobs end to end: the pipeline's simulator fixtures, and helpers to submit jobs the way
the admin API does (checked, then queued through the audited admin service) and to read them
back."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import text

from app.admin import service as admin
from app.models import JobStatus
from app.registry.resources import WriteKind
from app.runtime import Runtime
from app.writes import policy
from tests.pipeline.conftest import pipeline_settings, prt, sim, simulator

__all__ = ["pipeline_settings", "prt", "sim", "simulator"]

_keys = itertools.count(1)


def job(
    resource_name: str,
    operation: str = "sync",
    *,
    company_id: int = 31,
    project_id: int | None = None,
    payload: dict[str, Any] | None = None,
    origin_id: str | None = None,
    resource_id: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    return {
        "company_id": company_id,
        "project_id": project_id,
        "resource_name": resource_name,
        "operation": operation,
        "payload": payload,
        "origin_id": origin_id,
        "resource_id": resource_id,
        "idempotency_key": key or f"key-{next(_keys)}",
    }


def vendor(origin: str, company_id: int = 31, **fields: Any) -> dict[str, Any]:
    payload = {"name": f"Vendor {origin}", **fields}
    return job("Company Vendors", company_id=company_id, origin_id=origin, payload=payload)


def rfi(number: str, project_id: int = 900, company_id: int = 31) -> dict[str, Any]:
    payload = {"subject": f"RFI {number}", "question": {"body": "Which detail applies?"},
               "rfi_manager_id": 77, "number": number}  # fmt: skip
    return job("RFIs", "create", company_id=company_id, project_id=project_id, payload=payload)


async def submit(runtime: Runtime, jobs: Sequence[dict[str, Any]]) -> list[int]:
    submissions = [
        policy.check(
            **{**j, "operation": WriteKind(j["operation"])},
            payload_max_bytes=runtime.settings.write_payload_max_bytes,
        )
        for j in jobs
    ]
    async with runtime.sessions() as session, session.begin():
        accepted = await admin.submit_jobs(session, submissions, actor="test")
    return [a.id for a in accepted]


async def job_rows(runtime: Runtime, ids: Sequence[int] | None = None) -> list[Any]:
    where = "" if ids is None else "WHERE id = ANY(:ids)"
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(f"SELECT * FROM write_jobs {where} ORDER BY id"),  # noqa: S608
            {} if ids is None else {"ids": list(ids)},
        )
        return list(rows.all())


async def job_statuses(runtime: Runtime) -> Counter[str]:
    return Counter(str(r.status) for r in await job_rows(runtime))


async def all_jobs_final(runtime: Runtime) -> bool:
    counts = await job_statuses(runtime)
    final = {s.value for s in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)}
    return bool(counts) and set(counts) <= final


async def write_calls(runtime: Runtime, purpose: str = "write") -> list[Any]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT * FROM procore_calls WHERE purpose = :p ORDER BY id"), {"p": purpose}
        )
        return list(rows.all())


async def sim_resources(
    sim: httpx.AsyncClient, company_id: int, resource_name: str
) -> list[dict[str, Any]]:
    listed = await sim.get(
        "/_sim/resources", params={"company_id": company_id, "resource_name": resource_name}
    )
    listed.raise_for_status()
    return [r["body"] for r in listed.json()]


async def published(runtime: Runtime) -> list[Any]:
    """The jobs' outcomes in the outbox, in order: job_id, kind, detail (the rest of data)."""
    async with runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT id, type, data FROM outbox WHERE type LIKE 'job.%' ORDER BY id")
        )
        return [
            SimpleNamespace(
                id=r.id,
                job_id=r.data["job_id"],
                kind=r.type,
                detail={k: v for k, v in r.data.items() if k != "job_id"},
            )
            for r in rows
        ]
