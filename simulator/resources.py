"""The Procore resources the simulator serves, and how each one looks and changes.

A resource is stored as a small record (kind, ids, timestamps, kind-specific fields) and
rendered into the JSON body Procore's show endpoint answers. Updates bump `updated_at`
(strictly increasing, millisecond precision, so a mirror's newest-wins rule can always tell
two versions apart) and change one visible field, so a consumer can see that the fetch it
made after an event returned the new state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

JSON = Any  # a decoded JSON value; bodies are built from dicts, lists and scalars


class Kind(StrEnum):
    """Resource names exactly as they appear in webhook payloads (`resource_name`)."""

    PROJECTS = "Projects"
    RFIS = "RFIs"
    SUBMITTALS = "Submittals"
    OBSERVATION_ITEMS = "Observation Items"
    PUNCH_ITEMS = "Punch Items"
    COMPANY_USERS = "Company Users"
    PROJECT_VENDORS = "Project Vendors"


# Company-level resources carry no project: their webhooks have project_id null or absent.
COMPANY_LEVEL: frozenset[Kind] = frozenset({Kind.PROJECTS, Kind.COMPANY_USERS})

# The one field an update rewrites, per kind, so the new state is visible in the body.
_CHANGING_FIELD: dict[Kind, str] = {
    Kind.PROJECTS: "description",
    Kind.RFIS: "subject",
    Kind.SUBMITTALS: "title",
    Kind.OBSERVATION_ITEMS: "description",
    Kind.PUNCH_ITEMS: "description",
    Kind.COMPANY_USERS: "job_title",
    Kind.PROJECT_VENDORS: "trade_name",
}


def is_project_level(kind: Kind) -> bool:
    return kind not in COMPANY_LEVEL


@dataclass(slots=True)
class Resource:
    kind: Kind
    id: int
    company_id: int
    # For Projects this is None (a project is company-level); its own id is `id`.
    project_id: int | None
    created_at: datetime
    updated_at: datetime
    fields: dict[str, JSON] = field(default_factory=dict)
    revision: int = 0

    @property
    def key(self) -> tuple[Kind, int]:
        return (self.kind, self.id)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, the form Procore's REST bodies use."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def new_resource(
    kind: Kind,
    resource_id: int,
    company_id: int,
    project_id: int | None,
    now: datetime,
    overrides: dict[str, JSON] | None = None,
) -> Resource:
    fields = _initial_fields(kind, resource_id)
    fields.update(overrides or {})
    stamp = _truncate_to_millis(now)
    return Resource(
        kind=kind,
        id=resource_id,
        company_id=company_id,
        project_id=None if kind in COMPANY_LEVEL else project_id,
        created_at=stamp,
        updated_at=stamp,
        fields=fields,
    )


def apply_update(
    resource: Resource, now: datetime, overrides: dict[str, JSON] | None = None
) -> None:
    """Change the resource the way a user edit would: new field value, later `updated_at`."""
    resource.revision += 1
    name = _CHANGING_FIELD[resource.kind]
    base = str(resource.fields.get(name, "")).split(" (rev ", 1)[0]
    resource.fields[name] = f"{base} (rev {resource.revision})"
    resource.fields.update(overrides or {})
    stamp = _truncate_to_millis(now)
    floor = resource.updated_at + timedelta(milliseconds=1)
    resource.updated_at = max(stamp, floor)


def render(resource: Resource, company_name: str) -> dict[str, JSON]:
    """The body of the resource's show endpoint."""
    body: dict[str, JSON] = {"id": resource.id}
    body.update(resource.fields)
    if resource.kind is Kind.PROJECTS:
        body["company"] = {"id": resource.company_id, "name": company_name}
    body["created_at"] = iso_millis(resource.created_at)
    body["updated_at"] = iso_millis(resource.updated_at)
    return body


def _truncate_to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def _initial_fields(kind: Kind, rid: int) -> dict[str, JSON]:
    # Values are plausible rather than random so seeded runs render identical bodies.
    if kind is Kind.PROJECTS:
        return {
            "name": f"Project {rid}",
            "display_name": f"{rid} - Project {rid}",
            "project_number": str(rid),
            "active": True,
            "stage": "Course of Construction",
            "address": "100 Main Street",
            "city": "Carpinteria",
            "state_code": "CA",
            "country_code": "US",
            "zip": "93013",
            "description": "Mixed-use building",
        }
    if kind is Kind.RFIS:
        return {
            "number": str(rid % 1000),
            "subject": f"Clarify detail {rid}",
            "status": "open",
            "private": False,
            "due_date": "2026-04-15",
            "reference": None,
        }
    if kind is Kind.SUBMITTALS:
        return {
            "number": str(rid % 1000),
            "revision": 0,
            "title": f"Shop drawings {rid}",
            "status": {"id": 1, "name": "Open"},
            "specification_section": {"id": 12, "number": "03 30 00", "description": "Concrete"},
            "due_date": "2026-05-01",
        }
    if kind is Kind.OBSERVATION_ITEMS:
        return {
            "number": str(rid % 1000),
            "name": f"Observation {rid}",
            "status": "initiated",
            "priority": "Medium",
            "type": {"id": 3, "name": "Safety"},
            "description": "Guardrail missing on level 3",
            "due_date": "2026-04-20",
        }
    if kind is Kind.PUNCH_ITEMS:
        return {
            "position": rid % 1000,
            "name": f"Punch item {rid}",
            "status": "open",
            "workflow_status": "initialized",
            "priority": "medium",
            "description": "Touch up paint at door frame",
            "due_date": "2026-04-30",
        }
    if kind is Kind.COMPANY_USERS:
        return {
            "name": f"User {rid}",
            "first_name": "User",
            "last_name": str(rid),
            "email_address": f"user{rid}@example.com",
            "job_title": "Project Engineer",
            "is_active": True,
            "is_employee": True,
        }
    return {
        "name": f"Vendor {rid}",
        "abbreviated_name": f"V{rid}",
        "trade_name": "Electrical",
        "business_phone": "+1 805 555 0100",
        "email_address": f"vendor{rid}@example.com",
        "is_active": True,
    }
