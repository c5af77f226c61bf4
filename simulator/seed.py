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
- `resource_name` is one of: Projects (use `companies[].projects` instead), RFIs, Submittals,
  Observation Items, Punch Items, Company Users (company-level: no `project_id`), Project
  Vendors. `fields` override the generated body fields.
- `rng_seed` seeds every random choice (faults, duplicate deliveries, event ids), so two runs
  from the same seed and the same calls behave the same.

`DEFAULT_SEED` is used when no seed file is given. Its OAuth client is
`DEFAULT_CLIENT_ID` / `DEFAULT_CLIENT_SECRET`, a development-only pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simulator.resources import Kind

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


class SeedCompany(_Strict):
    id: int
    name: str
    installed: bool = True
    projects: tuple[SeedProject, ...] = ()


class SeedResource(_Strict):
    resource_name: Kind
    id: int
    company_id: int
    project_id: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


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
        resource_name=Kind.RFIS,
        id=rid,
        company_id=company,
        project_id=project,
        fields={"subject": subject},
    )


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
        SeedResource(resource_name=Kind.SUBMITTALS, id=8812, company_id=31, project_id=900),
        SeedResource(resource_name=Kind.SUBMITTALS, id=8813, company_id=32, project_id=910),
        SeedResource(resource_name=Kind.OBSERVATION_ITEMS, id=7001, company_id=31, project_id=900),
        SeedResource(resource_name=Kind.PUNCH_ITEMS, id=6001, company_id=31, project_id=900),
        SeedResource(resource_name=Kind.PROJECT_VENDORS, id=4001, company_id=31, project_id=900),
        SeedResource(resource_name=Kind.COMPANY_USERS, id=3001, company_id=31),
        SeedResource(resource_name=Kind.COMPANY_USERS, id=3002, company_id=32),
        SeedResource(resource_name=Kind.COMPANY_USERS, id=3003, company_id=33),
    ),
)
