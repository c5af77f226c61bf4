"""The simulated Procore world, in memory: companies, projects, resources, OAuth, budgets,
faults and the exact call counters. Pure: no I/O; the HTTP layers read and change it.

Everything here is touched from the simulator's own event loop only, so it needs no locks,
and every counter is exact.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from simulator.faults import FaultPlan
from simulator.hook_registry import HookRegistry
from simulator.payloads import EventIds
from simulator.ratelimit import RateLimiter
from simulator.resources import (
    KINDS,
    Kind,
    Resource,
    apply_update,
    apply_write,
    new_resource,
)
from simulator.seed import Seed
from simulator.tokens import TokenStore

SERVICE_ACCOUNT_FIRST_ID = 990_000


class Switches(BaseModel):
    """Behaviours where Procore's documentation disagrees with itself (FACTS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The install guide lists 401 for "app not installed"; the API answers 403 elsewhere.
    not_installed_status: Literal[401, 403] = 403
    # Reusing a spent refresh token also kills the one that replaced it.
    refresh_reuse_revokes_family: bool = True
    # The simulated user approves at /oauth/authorize (false: redirect with access_denied).
    authorize_consents: bool = True
    # Hook destinations "must be publicly accessible over HTTPS" (webhooks_api.md); a local
    # receiver over plain http is allowed only when this is on.
    allow_http_destinations: bool = False
    # Trigger answers spell `event_type` as the OpenAPI enum does (CREATE|UPDATE|DELETE);
    # requests use lower case. False: echo lower case.
    trigger_event_type_upper: bool = True
    # `Procore-Company-Id` (`tutorials/tutorial_mpz.md`): "required" on every call but /me and
    # /companies, where only a multi-region service account must still send it (below). Some
    # SDKs (pyprocore, ProPyCore)
    # leave it out where the path or query names the company or project: "inferred" takes the
    # company from there, and lets a service account call /me and /companies without it.
    company_header: Literal["required", "inferred"] = "required"
    # Multiple Procore Regions: "If you intend to use DMSAs with Multiple Procore Regions
    # (MPR), you must include the Procore-Company-Id request header when making calls to the
    # /rest/v1.0/me or /rest/v1.0/companies endpoints" (`oauth/oauth_client_credentials.md`).
    # Off (one region, the page's reading): a service account may call them without it.
    multi_region: bool = False


@dataclass(slots=True)
class Company:
    id: int
    name: str
    installed: bool = True
    is_active: bool = True
    # The app's "Webhooks API" tool permission (Standard; Procore's default is None, then
    # the Webhooks API answers 403 in this company).
    webhooks_api: bool = True
    # Resource types (tools) the app's permission template does not grant in this company:
    # every call about them answers 403, in every project alike (FACTS.md §6, cause 2).
    denied_tools: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    name: str

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "name": self.name}


@dataclass(frozen=True, slots=True)
class CallKey:
    company_id: int | None
    project_id: int | None
    path: str
    route: str
    status: str


_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")


def route_of(path: str) -> str:
    """`/rest/v1.0/projects/900/rfis/5150` → `/rest/v1.0/projects/{id}/rfis/{id}`."""
    return _NUMERIC_SEGMENT.sub("/{id}", path)


class CallLog:
    """Every call received on /rest and /oauth, by company, project, path and status."""

    def __init__(self) -> None:
        self.counts: Counter[CallKey] = Counter()
        self._in_flight: Counter[int | None] = Counter()
        self._in_flight_total = 0
        self.max_in_flight: dict[int | None, int] = {}
        self.max_in_flight_total = 0

    def begin(self, company_id: int | None) -> None:
        self._in_flight[company_id] += 1
        self._in_flight_total += 1
        now = self._in_flight[company_id]
        if now > self.max_in_flight.get(company_id, 0):
            self.max_in_flight[company_id] = now
        self.max_in_flight_total = max(self.max_in_flight_total, self._in_flight_total)

    def end(self, company_id: int | None, project_id: int | None, path: str, status: str) -> None:
        self._in_flight[company_id] -= 1
        self._in_flight_total -= 1
        self.counts[CallKey(company_id, project_id, path, route_of(path), status)] += 1

    def clear(self) -> None:
        self.counts.clear()
        self.max_in_flight = {}
        self.max_in_flight_total = self._in_flight_total

    def summary(
        self, company_id: int | None = None, project_id: int | None = None
    ) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        by_path: Counter[str] = Counter()
        by_route: Counter[str] = Counter()
        for key, n in self.counts.items():
            if company_id is not None and key.company_id != company_id:
                continue
            if project_id is not None and key.project_id != project_id:
                continue
            by_status[key.status] += n
            by_path[key.path] += n
            by_route[key.route] += n
        return {
            "total": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "by_path": dict(sorted(by_path.items())),
            "by_route": dict(sorted(by_route.items())),
        }


class Simulator:
    def __init__(self, seed: Seed) -> None:
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Back to the seeded world: every counter zero, every setting at its default."""
        seed = self.seed
        self.rng = random.Random(seed.rng_seed)
        self.clock_offset_s = 0.0
        self.switches = Switches()
        self.tokens = TokenStore(seed.access_token_ttl_s)
        for client in seed.clients:
            self.tokens.register(client.client_id, client.client_secret)
        self.users = {u.id: User(u.id, u.login, u.name) for u in seed.users}
        self.authorizing_user_id: int | None = seed.users[0].id if seed.users else None
        self._service_accounts: dict[str, User] = {}
        self.rate_limiter = RateLimiter(seed.rate_limit)
        self.faults = FaultPlan(self.rng)
        self.event_ids = EventIds(self.rng)
        self.calls = CallLog()
        self.webhooks = HookRegistry()
        self.companies: dict[int, Company] = {}
        self.permitted: dict[int, bool] = {}
        # Tools disabled in one project: calls about them there answer 403 (FACTS.md §6, 3).
        self.disabled_tools: dict[int, set[str]] = {}
        self.resources: dict[tuple[str, int], Resource] = {}
        # `origin_id` is unique per kind within a company (`tutorials/using_sync_actions.md`).
        self.origins: dict[tuple[str, int, str], Resource] = {}
        # Changes applied by clients' write calls, by (kind, create|update|delete).
        self.writes_applied: Counter[tuple[str, str]] = Counter()
        self._next_id = 100_000
        for company in seed.companies:
            self.put_company(company.id, company.name, company.installed)
            for project in company.projects:
                made = self.put_project(company.id, project.id, project.name, project.permitted)
                made.fields["active"] = project.active
        today = self.now_dt()
        for r in seed.resources:
            fields = dict(r.fields)
            if r.days_ago is not None:
                fields["date"] = (today - timedelta(days=r.days_ago)).date().isoformat()
            self.add_resource(KINDS[r.resource_name], r.company_id, r.project_id, r.id, fields)

    # -- time ------------------------------------------------------------------------------

    def now(self) -> float:
        """Unix seconds on the simulated clock (real time plus any advance)."""
        return time.time() + self.clock_offset_s

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    # -- principals ------------------------------------------------------------------------

    def service_account(self, client_id: str) -> User:
        """The directory user a service account (client credentials) acts as."""
        user = self._service_accounts.get(client_id)
        if user is None:
            user_id = SERVICE_ACCOUNT_FIRST_ID + len(self._service_accounts)
            user = User(user_id, f"{client_id}@service-account.example.com", f"{client_id} (DMSA)")
            self._service_accounts[client_id] = user
        return user

    def user(self, user_id: int) -> User:
        for account in self._service_accounts.values():
            if account.id == user_id:
                return account
        return self.users.get(user_id) or User(
            user_id, f"user{user_id}@example.com", f"User {user_id}"
        )

    # -- companies and projects ------------------------------------------------------------

    def put_company(self, company_id: int, name: str | None, installed: bool | None) -> Company:
        company = self.companies.get(company_id)
        if company is None:
            company = Company(company_id, name or f"Company {company_id}")
            self.companies[company_id] = company
        if name is not None:
            company.name = name
        if installed is not None:
            company.installed = installed
        return company

    def put_project(
        self, company_id: int, project_id: int, name: str | None, permitted: bool | None
    ) -> Resource:
        if company_id not in self.companies:
            raise LookupError(f"company {company_id} does not exist")
        project = self.project(project_id)
        if project is not None and project.company_id != company_id:
            raise LookupError(f"project {project_id} belongs to company {project.company_id}")
        if project is None:
            project = self.add_resource(KINDS["Projects"], company_id, None, project_id, {})
        if name is not None:
            project.fields["name"] = name
            project.fields["display_name"] = f"{project_id} - {name}"
        if permitted is not None:
            self.permitted[project_id] = permitted
        return project

    def project(self, project_id: int) -> Resource | None:
        return self.resources.get(("Projects", project_id))

    def projects_of(self, company_id: int) -> list[Resource]:
        return sorted(
            (
                r
                for r in self.resources.values()
                if r.kind.name == "Projects" and r.company_id == company_id
            ),
            key=lambda r: r.id,
        )

    # -- resources -------------------------------------------------------------------------

    def allocate_id(self) -> int:
        while any((name, self._next_id) in self.resources for name in KINDS):
            self._next_id += 1
        allocated = self._next_id
        self._next_id += 1
        return allocated

    def add_resource(
        self,
        kind: Kind,
        company_id: int,
        project_id: int | None,
        resource_id: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Resource:
        if company_id not in self.companies:
            raise LookupError(f"company {company_id} does not exist")
        if not kind.company_level:
            project = None if project_id is None else self.project(project_id)
            if project is None or project.company_id != company_id:
                raise LookupError(f"{kind.name} needs a project of company {company_id}")
        rid = self.allocate_id() if resource_id is None else resource_id
        if (kind.name, rid) in self.resources:
            raise ValueError(f"{kind.name} {rid} already exists")
        origin = _origin(fields)
        if origin is not None and (kind.name, company_id, origin) in self.origins:
            raise ValueError(f"origin_id {origin!r} has already been taken")
        resource = new_resource(kind, rid, company_id, project_id, self.now_dt(), fields)
        self.resources[resource.key] = resource
        if origin is not None:
            self.origins[(kind.name, company_id, origin)] = resource
        if kind.name == "Projects":
            self.permitted.setdefault(rid, True)
            resource.fields.setdefault("name", f"Project {rid}")
        return resource

    def update_resource(self, resource: Resource, fields: dict[str, Any] | None = None) -> None:
        apply_update(resource, self.now_dt(), fields)

    def write_resource(self, resource: Resource, fields: dict[str, Any]) -> None:
        """A client's update: exactly these fields (a new `origin_id` must be free)."""
        before, after = _origin(resource.fields), _origin(fields)
        if after is not None and after != before:
            key = (resource.kind.name, resource.company_id, after)
            if key in self.origins:
                raise ValueError(f"origin_id {after!r} has already been taken")
            self.origins[key] = resource
            if before is not None:
                self.origins.pop((resource.kind.name, resource.company_id, before), None)
        apply_write(resource, self.now_dt(), fields)

    def by_origin(self, kind: Kind, company_id: int, origin_id: str) -> Resource | None:
        return self.origins.get((kind.name, company_id, origin_id))

    def delete_resource(self, resource: Resource) -> None:
        del self.resources[resource.key]
        origin = _origin(resource.fields)
        if origin is not None:
            self.origins.pop((resource.kind.name, resource.company_id, origin), None)

    def find(
        self,
        company_id: int | None = None,
        project_id: int | None = None,
        kinds: Iterable[Kind] | None = None,
    ) -> list[Resource]:
        wanted = {k.name for k in kinds} if kinds is not None else None
        found = [
            r
            for r in self.resources.values()
            if (company_id is None or r.company_id == company_id)
            and (
                project_id is None
                or r.project_id == project_id
                or (r.kind.name == "Projects" and r.id == project_id)
            )
            and (wanted is None or r.kind.name in wanted)
        ]
        return sorted(found, key=lambda r: (r.kind.name, r.id))

    def company_name(self, company_id: int) -> str:
        company = self.companies.get(company_id)
        return company.name if company else ""


def _origin(fields: dict[str, Any] | None) -> str | None:
    value = (fields or {}).get("origin_id")
    return None if value is None else str(value)
