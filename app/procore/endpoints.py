"""Which Procore endpoint shows each resource named in a webhook (FACTS.md §4). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A show endpoint; `path` is formatted with `id`, `company_id` and `project_id`."""

    path: str
    query: tuple[str, ...] = ()
    needs_project: bool = False


RESOURCE_ENDPOINTS: dict[str, Endpoint] = {
    "Projects": Endpoint("/rest/v1.0/projects/{id}", query=("company_id",)),
    "RFIs": Endpoint("/rest/v1.0/projects/{project_id}/rfis/{id}", needs_project=True),
    "Submittals": Endpoint("/rest/v1.0/projects/{project_id}/submittals/{id}", needs_project=True),
    "Observation Items": Endpoint(
        "/rest/v1.0/observations/items/{id}", query=("project_id",), needs_project=True
    ),
    "Punch Items": Endpoint(
        "/rest/v1.0/punch_items/{id}", query=("project_id",), needs_project=True
    ),
    "Company Users": Endpoint("/rest/v1.0/companies/{company_id}/users/{id}"),
    "Project Vendors": Endpoint(
        "/rest/v1.1/projects/{project_id}/vendors/{id}", needs_project=True
    ),
}


def is_supported(resource_name: str | None) -> bool:
    return resource_name in RESOURCE_ENDPOINTS


class MissingProject(ValueError):
    """The resource lives in a project but the event names none."""


def resource_path(
    resource_name: str, resource_id: int, *, company_id: int, project_id: int | None
) -> str:
    """The path (with query) that shows one resource.

    Raises KeyError for an unknown resource and MissingProject when a project-level resource
    comes without its project: both are events that cannot be served, not Procore failures.
    """
    endpoint = RESOURCE_ENDPOINTS[resource_name]
    if endpoint.needs_project and project_id is None:
        raise MissingProject(f"{resource_name} {resource_id} has no project_id")
    values = {"id": resource_id, "company_id": company_id, "project_id": project_id}
    path = endpoint.path.format(**values)
    if endpoint.query:
        path += "?" + urlencode({name: values[name] for name in endpoint.query})
    return path
