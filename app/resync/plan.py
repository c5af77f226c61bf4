"""A resync's parts and pages, and which listed resources the mirror lacks. Pure.

A run over a company covers each company-level resource once and each project-level resource
in every permitted project; a run over a project covers that project's resources only. Each
part is listed page by page (`page`, `per_page`); the last page is the one without a
`Link: rel="next"` (else: `Total` reached, else: a short page), FACTS.md §4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

# List endpoints per resource, formatted with `company_id` and `project_id`.
LIST_PATHS: dict[str, str] = {
    "Projects": "/rest/v1.0/projects?company_id={company_id}",
    "Company Users": "/rest/v1.0/companies/{company_id}/users",
    "RFIs": "/rest/v1.0/projects/{project_id}/rfis",
    "Submittals": "/rest/v1.0/projects/{project_id}/submittals",
    "Observation Items": "/rest/v1.0/observations/items?project_id={project_id}",
    "Punch Items": "/rest/v1.0/punch_items?project_id={project_id}",
    "Project Vendors": "/rest/v1.1/projects/{project_id}/vendors",
}
COMPANY_LEVEL = frozenset({"Projects", "Company Users"})


@dataclass(frozen=True, slots=True)
class Part:
    resource_name: str
    project_id: int | None

    @property
    def key(self) -> str:
        return f"{self.resource_name}@{'-' if self.project_id is None else self.project_id}"


def plan_parts(
    resources: Iterable[str],
    project_ids: Iterable[int],
    *,
    project_id: int | None = None,
    resource_name: str | None = None,
) -> list[Part]:
    """The parts of a run, company-level first, then by project."""
    wanted = [r for r in resources if r in LIST_PATHS and resource_name in (None, r)]
    if project_id is not None:
        return [Part(r, project_id) for r in wanted if r not in COMPANY_LEVEL]
    parts = [Part(r, None) for r in wanted if r in COMPANY_LEVEL]
    projects = sorted(set(project_ids))
    parts += [Part(r, p) for p in projects for r in wanted if r not in COMPANY_LEVEL]
    return parts


def page_path(part: Part, company_id: int, page: int, per_page: int) -> str:
    path = LIST_PATHS[part.resource_name].format(company_id=company_id, project_id=part.project_id)
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{urlencode({'page': page, 'per_page': per_page})}"


def has_next_page(headers: Mapping[str, str] | None, page: int, per_page: int, count: int) -> bool:
    """Procore's pagination: a `Link` rel="next", else `Total`, else a full page."""
    if headers is not None:
        link = headers.get("link")
        if link is not None:
            return 'rel="next"' in link
        total = headers.get("total")
        if total is not None and total.isdigit():
            return page * per_page < int(total)
    return count >= per_page


@dataclass(frozen=True, slots=True)
class Known:
    """What the mirror holds for one resource."""

    procore_updated_at: datetime | None
    deleted: bool
    data: dict[str, Any] | None


def to_write(
    listed: Sequence[tuple[int, datetime | None, dict[str, Any]]], known: Mapping[int, Known]
) -> list[int]:
    """Ids of listed resources the mirror lacks or holds older; unchanged ones are left alone
    (so a resync of an unchanged company writes nothing, and a list body never replaces an
    equally new show body)."""
    ids: list[int] = []
    for resource_id, updated_at, data in listed:
        held = known.get(resource_id)
        if held is None or held.deleted:
            ids.append(resource_id)
        elif updated_at is not None and held.procore_updated_at is not None:
            if updated_at > held.procore_updated_at:
                ids.append(resource_id)
        elif held.data != data:
            ids.append(resource_id)
    return ids
