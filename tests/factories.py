"""Rows and payloads the tests build and read back: one home for every test factory (gates,
events as the receiver stores them, mirror rows, Procore calls, audit rows, write jobs,
destinations, mirror changes)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
from sqlalchemy import select, text

from app.admin import service as admin
from app.delivery import destinations
from app.delivery.addresses import AddressRules
from app.delivery.schemas import DestinationCreated, DestinationIn
from app.events import mirror
from app.models import (
    AdminAction,
    Event,
    EventStatus,
    Gate,
    GateScope,
    GateState,
    JobStatus,
    ProcoreCall,
    Resource,
)
from app.registry.resources import WriteKind
from app.runtime import Runtime
from app.writes import policy
from tests.delivery.receiver import Destination


async def add_gate(runtime: Runtime, **fields: Any) -> Gate:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "scope": GateScope.COMPANY,
        "company_id": 31,
        "state": GateState.PARKED,
        "signals": 3,
        "parked_at": now - timedelta(minutes=12),
        "parked_by": "policy",
        "probe_attempt": 2,
        "next_probe_at": now + timedelta(minutes=4),
        "last_status": 403,
        "body_excerpt": '{"errors": ["App is not connected to this company."]}',
        "diagnosis": "not_installed",
        "remediation": "install the app in company 31 (Company Admin → App Management)",
    }
    values.update(fields)
    if "scope_key" not in values:
        scope = values["scope"]
        if scope is GateScope.PROJECT:
            values["scope_key"] = f"project:{values['company_id']}:{values['project_id']}"
        elif scope is GateScope.CREDENTIAL:
            values["scope_key"] = f"credential:{values['credential_id']}"
        else:
            values["scope_key"] = f"company:{values['company_id']}"
    gate = Gate(**values)
    async with runtime.sessions() as session, session.begin():
        session.add(gate)
    return gate


# Unique keys and ids across every factory of a run.
_keys = itertools.count(1)


async def add_events(
    runtime: Runtime, count: int, *, status: EventStatus = EventStatus.DONE, **fields: Any
) -> list[int]:
    rows = []
    for _ in range(count):
        values: dict[str, Any] = {
            "dedupe_key": f"OPS{next(_keys):020d}",
            "payload_version": "v2",
            "company_id": 31,
            "project_id": 900,
            "resource_name": "RFIs",
            "resource_id": 5150,
            "event_type": "update",
            "reason": "update",
            "raw": {"resource_name": "RFIs"},
            "status": status,
            "attempts": 3 if status in (EventStatus.DEAD, EventStatus.RETRYING) else 0,
        }
        if status in (EventStatus.DONE, EventStatus.SKIPPED, EventStatus.DEAD):
            values["finished_at"] = datetime.now(UTC)
            values["last_status"] = 500 if status is EventStatus.DEAD else 200
        values.update(fields)
        rows.append(Event(**values))
    async with runtime.sessions() as session, session.begin():
        session.add_all(rows)
    return [row.id for row in rows]


async def add_resources(runtime: Runtime, specs: Sequence[dict[str, Any]]) -> list[Resource]:
    rows = [
        Resource(
            company_id=spec.get("company_id", 31),
            resource_name=spec.get("resource_name", "RFIs"),
            resource_id=spec["resource_id"],
            project_id=spec.get("project_id", 900),
            data=spec.get("data", {"id": spec["resource_id"]}),
            deleted_at=spec.get("deleted_at"),
        )
        for spec in specs
    ]
    async with runtime.sessions() as session, session.begin():
        session.add_all(rows)
    return rows


async def add_calls(runtime: Runtime, specs: Sequence[dict[str, Any]]) -> None:
    async with runtime.sessions() as session, session.begin():
        for spec in specs:
            session.add(
                ProcoreCall(
                    **{
                        "purpose": "fetch",
                        "method": "GET",
                        "path": "/rest/v1.0/projects",
                        "status": 403,
                        "latency_ms": 12,
                        "company_id": 31,
                        **spec,
                    }
                )
            )


async def load_event(runtime: Runtime, event_id: int) -> Event:
    async with runtime.sessions() as session:
        event = await session.get(Event, event_id)
        assert event is not None
        return event


async def statuses_of(runtime: Runtime, ids: Sequence[int]) -> set[EventStatus]:
    async with runtime.sessions() as session:
        found = await session.scalars(select(Event.status).where(Event.id.in_(ids)))
        return set(found.all())


async def audit_rows(runtime: Runtime) -> list[AdminAction]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(AdminAction).order_by(AdminAction.id))).all())


FINAL = ("done", "skipped", "dead")


@dataclass(frozen=True, slots=True)
class Spec:
    resource_name: str
    resource_id: int
    company_id: int = 31
    project_id: int | None = 900
    event_type: str = "update"


async def store_events(
    runtime: Runtime, specs: Sequence[Spec], *, leased: bool = False
) -> list[int]:
    """Insert events as the receiver does (status `queued`); `leased` also sets the dispatch
    lease the receiver sets before it enqueues the ids itself."""
    rows = [
        {
            "k": f"test-{time.time_ns()}-{next(_keys)}",
            "c": s.company_id,
            "p": s.project_id,
            "rn": s.resource_name,
            "ri": s.resource_id,
            "et": s.event_type,
            "raw": orjson.dumps({"resource_name": s.resource_name}).decode(),
        }
        for s in specs
    ]
    lease = "now() + interval '30 seconds'" if leased else "NULL"
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text(
                f"""
                INSERT INTO events (dedupe_key, payload_version, company_id, project_id,
                    resource_name, resource_id, event_type, reason, occurred_at, raw, status,
                    locked_until)
                VALUES (:k, 'v2', :c, :p, :rn, :ri, :et, :et, now(), CAST(:raw AS jsonb),
                    'queued', {lease})
                """  # noqa: S608
            ),
            rows,
        )
        ids = (
            await session.execute(
                text("SELECT id FROM events WHERE dedupe_key = ANY(:keys) ORDER BY id"),
                {"keys": [r["k"] for r in rows]},
            )
        ).scalars()
        return list(ids)


async def statuses(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        rows = await session.execute(text("SELECT status, count(*) FROM events GROUP BY status"))
        return {str(status): int(count) for status, count in rows.all()}


async def all_final(runtime: Runtime) -> bool:
    counts = await statuses(runtime)
    return bool(counts) and all(status in FINAL for status in counts)


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


DEV_RULES = AddressRules(require_https=False, allow_private=True)


async def add_destination(
    runtime: Runtime, receiver: Destination, **fields: Any
) -> DestinationCreated:
    """A destination pointing at `receiver` (which learns its secret)."""
    starts_at = await destinations.heads(runtime.sessions)
    async with runtime.sessions() as session, session.begin():
        created = await destinations.create(
            session,
            DestinationIn(url=receiver.url, **fields),
            vault=runtime.vault,
            rules=DEV_RULES,
            starts_at=starts_at,
            actor="test",
        )
    receiver.secrets.append(created.secret)
    return created


def snapshot(
    resource_id: int,
    *,
    company_id: int = 31,
    resource_name: str = "RFIs",
    project_id: int | None = 900,
    **data: Any,
) -> mirror.Snapshot:
    now = datetime.now(UTC)
    return mirror.Snapshot(
        company_id=company_id,
        resource_name=resource_name,
        resource_id=resource_id,
        project_id=project_id,
        data={"id": resource_id, "n": next(_keys), **data},
        procore_updated_at=None,
        fetched_at=now,
    )


async def change(runtime: Runtime, snapshots: Sequence[mirror.Snapshot]) -> None:
    async with runtime.sessions() as session, session.begin():
        await mirror.upsert(session, snapshots)


async def delete(runtime: Runtime, resource_id: int, *, company_id: int = 31) -> None:
    async with runtime.sessions() as session, session.begin():
        await mirror.soft_delete(
            session,
            [mirror.Deletion(company_id, "RFIs", resource_id, 900, datetime.now(UTC))],
        )
