"""The simulator's starting world: clients, users, companies, projects and resources.

Seed JSON format (every key optional; omitted lists fall back to empty, omitted settings to
the defaults below; unknown keys are refused so a typo does not silently do nothing):

```json
{
  "clients": [{"client_id": "sim-client", "client_secret": "sim-secret"}],
  "users": [{"id": 77, "login": "pat.builder@example.com", "name": "Pat Builder"}],
  "companies": [
    {"id": 31, "name": "Acme Builders", "installed": true,
     "projects": [{"id": 900, "name": "Tower A", "permitted": true}]}
  ],
  "resources": [
    {"resource_name": "RFIs", "id": 5150, "company_id": 31, "project_id": 900,
     "fields": {"subject": "Slab edge detail"}}
  ],
  "rate_limit": {"hourly": 3600, "hourly_window_s": 3600, "spike": 25, "spike_window_s": 10,
                 "retry_after_on_429": false},
  "access_token_ttl_s": 5400,
  "rng_seed": 0
}
```

- `users[0]` is the person who consents at `/oauth/authorize` (authorization-code grant).
- `resource_name` is a kind of `simulator.resources.KINDS` (Projects: use
  `companies[].projects` instead; company-level kinds take no `project_id`). `fields`
  override the generated body fields; `days_ago` dates a daily log in the past.
- `rng_seed` seeds every random choice (faults, duplicate deliveries, event ids), so two runs
  from the same seed and the same calls behave the same.

`DEFAULT_SEED` is used when no seed file is given. Its OAuth client is
`DEFAULT_CLIENT_ID` / `DEFAULT_CLIENT_SECRET`, a development-only pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.resources import KINDS

DEFAULT_CLIENT_ID = "sim-client"
DEFAULT_CLIENT_SECRET = "sim-secret"  # noqa: S105 - a documented development-only credential


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeedClient(_Strict):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class SeedUser(_Strict):
    id: int
    login: str
    name: str


class SeedProject(_Strict):
    id: int
    name: str
    permitted: bool = True
    # An inactive project is left out of Procore's default project lists.
    active: bool = True


class SeedCompany(_Strict):
    id: int
    name: str
    installed: bool = True
    projects: tuple[SeedProject, ...] = ()


class SeedResource(_Strict):
    resource_name: str
    id: int
    company_id: int
    project_id: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    # Dated kinds (daily logs, timecards): the record's day, this many days before the start.
    days_ago: int | None = Field(default=None, ge=0)

    @field_validator("resource_name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown resource_name {value!r} (known: {', '.join(KINDS)})")
        return value


class RateLimitSettings(_Strict):
    # Defaults follow the older documented figures (3,600 per hour, per company for a
    # service account) and the published 25-per-10-seconds spike window.
    hourly: int = Field(default=3600, ge=0)
    hourly_window_s: float = Field(default=3600.0, gt=0)
    spike: int = Field(default=25, ge=0)
    spike_window_s: float = Field(default=10.0, gt=0)
    # Procore's docs disagree on whether a 429 carries Retry-After: a switch.
    retry_after_on_429: bool = False


class Seed(_Strict):
    clients: tuple[SeedClient, ...] = ()
    users: tuple[SeedUser, ...] = ()
    companies: tuple[SeedCompany, ...] = ()
    resources: tuple[SeedResource, ...] = ()
    rate_limit: RateLimitSettings = RateLimitSettings()
    access_token_ttl_s: int = Field(default=5400, gt=0)
    rng_seed: int = 0


def load_seed(path: Path) -> Seed:
    """Read a seed file; a client-less seed still gets the default client."""
    seed = Seed.model_validate_json(path.read_bytes())
    if seed.clients:
        return seed
    return seed.model_copy(update={"clients": DEFAULT_SEED.clients})


def _rfi(rid: int, company: int, project: int, subject: str) -> SeedResource:
    return SeedResource(
        resource_name="RFIs",
        id=rid,
        company_id=company,
        project_id=project,
        fields={"subject": subject},
    )


def _in(
    name: str, rid: int, project: int | None = 900, company: int = 31, **kw: Any
) -> SeedResource:
    return SeedResource(resource_name=name, id=rid, company_id=company, project_id=project, **kw)


DEFAULT_SEED = Seed(
    clients=(SeedClient(client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET),),
    users=(SeedUser(id=77, login="pat.builder@example.com", name="Pat Builder"),),
    companies=(
        SeedCompany(
            id=31,
            name="Acme Builders",
            projects=(
                SeedProject(id=900, name="Tower A"),
                SeedProject(id=901, name="Harbor Bridge"),
                SeedProject(id=902, name="Depot Yard", permitted=False),
                SeedProject(id=903, name="Old Warehouse", active=False),
            ),
        ),
        SeedCompany(
            id=32,
            name="Borealis Construction",
            projects=(SeedProject(id=910, name="North Clinic"),),
        ),
        SeedCompany(
            id=33,
            name="Cobalt Contractors",
            installed=False,
            projects=(SeedProject(id=920, name="Ridge School"),),
        ),
    ),
    resources=(
        _rfi(5150, 31, 900, "Slab edge detail at grid C"),
        _rfi(5151, 31, 900, "Curtain wall anchor spacing"),
        _rfi(5152, 31, 901, "Bearing pad material"),
        _rfi(5160, 32, 910, "Medical gas outlet heights"),
        _rfi(5170, 33, 920, "Gym floor finish"),
        _rfi(5180, 31, 902, "Fence line survey"),
        _in("Submittals", 8812),
        _in("Submittals", 8813, 910, 32),
        _in("Observation Items", 7001),
        _in("Punch Items", 6001),
        _in("Project Vendors", 4001),
        _in("Project Users", 3001),
        _in("Company Users", 3001, None),
        _in("Company Users", 3002, None, 32),
        _in("Company Users", 3003, None, 33),
        # Inactive: left out of the default lists, listed by the inactive ones.
        _in("Company Users", 3004, None, fields={"is_active": False}),
        _in("Company Vendors", 4101, None),
        _in("Company Vendors", 4102, None, fields={"is_active": False}),
        _in("Company Vendors", 4103, None, 32),
        _in("Departments", 2101, None),
        _in("Offices", 2201, None),
        _in("Trades", 2301, None),
        _in("Submittal Packages", 8901),
        _in("Task Items", 6101),
        _in("Locations", 6201),
        _in("Inspection Checklists", 7101),
        _in("Incidents", 7201),
        _in("Prime Contracts", 9001),
        _in("Purchase Order Contracts", 9101),
        _in("Work Order Contracts", 9201),
        _in("Change Events", 9301),
        _in("Change Order Packages", 9401),
        _in("Potential Change Orders", 9501),
        _in("Direct Costs", 9601),
        _in("Direct Cost Line Items", 9611, fields={"direct_cost_id": 9601}),
        _in("Budget Modifications", 9701),
        _in("Cost Codes", 9801),
        _in("Payment Applications", 9901),
        # Daily logs of today and of past days (a default list answers today's only), and a
        # pending one (a default list answers approved ones only).
        _in("Manpower Logs", 10001),
        _in("Manpower Logs", 10002, days_ago=5),
        _in("Manpower Logs", 10003, fields={"status": "pending"}),
        _in("Notes Logs", 10101, days_ago=1),
        _in("Work Logs", 10201, days_ago=20),
        _in("Delivery Logs", 10301),
        _in("Equipment Logs", 10401, days_ago=2),
        _in("Visitor Logs", 10501),
        _in("Accident Logs", 10601, days_ago=40),
        _in("Safety Violation Logs", 10701),
        _in("Inspection Logs", 10901, days_ago=4),
        _in("Timecard Entries", 10801, days_ago=3),
        _in("Images", 11001),
        _in("Drawing Uploads", 11101),
        _in("Specification Sections", 11201),
        _in("Project Folders", 11301),
        _in("Project Files", 11401, fields={"parent_id": 11301}),
        _in("Project Files", 11402),
    ),
)
