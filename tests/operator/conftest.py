"""Operator surface fixtures: admin headers, and rows written straight into the tables (a
parked gate, events in any status, mirror rows) so each test sets up exactly the state it
reads."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import (
    AdminAction,
    Event,
    EventStatus,
    Gate,
    GateScope,
    GateState,
    ProcoreCall,
    Resource,
)
from app.runtime import Runtime
from tests.conftest import ADMIN_TOKEN

# The Procore simulator on a real port, for the paths that probe Procore (confirm-install).
from tests.pipeline.conftest import pipeline_settings, sim, simulator  # noqa: F401

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

_keys = itertools.count(1)


@pytest.fixture
def admin() -> dict[str, str]:
    return dict(ADMIN)


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


async def statuses(runtime: Runtime, ids: Sequence[int]) -> set[EventStatus]:
    async with runtime.sessions() as session:
        found = await session.scalars(select(Event.status).where(Event.id.in_(ids)))
        return set(found.all())


async def audit_rows(runtime: Runtime) -> list[AdminAction]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(AdminAction).order_by(AdminAction.id))).all())
