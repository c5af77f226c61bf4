"""The control and observation API under `/_sim/...` (no auth: a development tool).

World:
- `POST /_sim/reset` → back to the seed; counters zero, hooks removed, settings default.
- `POST /_sim/clients` `{"client_id", "client_secret"}` → 201; registering again lifts a revocation.
- `POST /_sim/clients/{client_id}/revoke` → every token of the client answers 401.
- `GET /_sim/companies` → companies with install state and projects with permission.
- `PUT /_sim/companies/{company_id}` `{"name"?, "installed"?, "webhooks_api"?,
  "denied_tools"?}` → create or update (`webhooks_api`: the app's Webhooks API tool
  permission; false → that API's 403; `denied_tools`: resource types the permission template
  does not grant, 403 in every project).
- `PUT /_sim/companies/{company_id}/projects/{project_id}` `{"name"?, "permitted"?,
  "disabled_tools"?}` (`permitted`: in the service account's permitted projects, which an app
  update or reinstall clears, FACTS.md §3; `disabled_tools`: resource types off in the project).
- `GET /_sim/resources?company_id=&project_id=&resource_name=` → current resource bodies.
- `POST /_sim/resources` `{"resource_name", "company_id", "project_id"?, "id"?, "fields"?}`
  → create silently (no webhook); `DELETE /_sim/resources/{resource_name}/{id}` likewise.
- `POST /_sim/events` (`EventRequest`) → change resources and deliver the matching webhooks;
  answers `{"resource_ids", "resources", "changes", "events", "duplicates", "reordered",
  "hooks"}`.

Behaviour:
- `PUT /_sim/rate_limit` `{"hourly", "hourly_window_s", "spike", "spike_window_s",
  "retry_after_on_429"}` (any subset; fresh windows start).
- `PUT /_sim/load_shedding` `{"active", "retry_after_s"?, "company_id"?}`.
- `PUT /_sim/faults` `{"latency_ms", "latency_jitter_ms", "error_rate", "error_status",
  "drop_rate", "lost_answer_rate", "include_oauth", "company_id"?, "rng_seed"?}` (replaces
  that scope's faults; `lost_answer_rate`: the call is acted on, then the answer is lost);
  `DELETE /_sim/faults` clears every fault and all load shedding.
- `PUT /_sim/tokens` `{"access_token_ttl_s"}` (new tokens); `POST /_sim/tokens/expire`.
- `PUT /_sim/switches` `{"not_installed_status": 401|403, "refresh_reuse_revokes_family",
  "authorize_consents", "allow_http_destinations", "trigger_event_type_upper",
  "company_header": "required"|"inferred", "multi_region"}`.
- `POST /_sim/clock` `{"advance_s"}` moves the simulated clock (tokens, codes, rate windows).

Webhooks:
- `POST /_sim/hooks` `{"destination_url", "authorization", "payload_version": "v2.0"|"v3.0"|
  "v4.0", "time_scale"?, "timeout_s"?, "short_api_version"?, "omit_null_project_id"?,
  "concurrency"?, "deactivate_after_failures"?}` → 201 `{"id", "queued", "in_flight",
  "failures", "paused_for_s", "outcomes", …}`; `GET /_sim/hooks`; `DELETE /_sim/hooks/{id}`;
  `GET /_sim/hooks/{id}/deliveries` (every attempt: event_id, at, outcome, status, duplicate);
  `POST /_sim/hooks/{id}/resume` (end the current pause now).
- `POST /_sim/drain` `{"timeout_s"}` → `{"drained": bool}` once nothing is queued or in flight.
- Hooks made through the Webhooks API (`/rest/v1.0/webhooks/hooks`, per company, with
  triggers): `GET /_sim/webhooks` (hooks, triggers, status, write counters),
  `PUT /_sim/webhooks/settings` `{"deactivate_after_failures", "time_scale"}`,
  `POST /_sim/webhooks/{id}/disable`; see `simulator.webhooks`.

Observation:
- `GET /_sim/calls?company_id=&project_id=` → `{"total", "by_status", "by_path", "by_route"}`
  over every /rest and /oauth call (status keys are strings: "200", "429", …, "dropped",
  "client_closed"; a call's company is the one it is about, see `simulator.edge`);
  `DELETE /_sim/calls` zeroes the call counters only.
- `GET /_sim/stats` → token grants, refreshes, OAuth errors, 429s, faults, most concurrent
  in-flight calls per company, deliveries by outcome, and `writes`: the changes clients'
  write calls applied, by kind and create|update|delete (simulator.writes).
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import errors_answer, json_answer
from simulator.faults import FaultSettings, Shedding
from simulator.payloads import Change, RelatedResource
from simulator.resources import KINDS, Resource, kind_of, render
from simulator.seed import RateLimitSettings
from simulator.sender import HookSettings, Sender
from simulator.state import Simulator, Switches

Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientBody(_Body):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class CompanyBody(_Body):
    name: str | None = None
    installed: bool | None = None
    # The app's Webhooks API tool permission in this company.
    webhooks_api: bool | None = None
    denied_tools: list[str] | None = None


class ProjectBody(_Body):
    name: str | None = None
    permitted: bool | None = None
    disabled_tools: list[str] | None = None


class RateLimitBody(_Body):
    hourly: int | None = Field(default=None, ge=0)
    hourly_window_s: float | None = Field(default=None, gt=0)
    spike: int | None = Field(default=None, ge=0)
    spike_window_s: float | None = Field(default=None, gt=0)
    retry_after_on_429: bool | None = None


class SheddingBody(Shedding):
    company_id: int | None = None


class FaultsBody(FaultSettings):
    company_id: int | None = None
    # Re-seed the fault RNG so a scenario can be replayed from a known point.
    rng_seed: int | None = None


class TokensBody(_Body):
    access_token_ttl_s: float = Field(gt=0)


class SwitchesBody(_Body):
    not_installed_status: int | None = None
    refresh_reuse_revokes_family: bool | None = None
    authorize_consents: bool | None = None
    allow_http_destinations: bool | None = None
    trigger_event_type_upper: bool | None = None
    company_header: str | None = None
    multi_region: bool | None = None


class ClockBody(_Body):
    advance_s: float


class DrainBody(_Body):
    timeout_s: float = Field(default=10.0, gt=0, le=600)


class ResourceBody(_Body):
    resource_name: str
    company_id: int
    project_id: int | None = None
    id: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class RelatedBody(_Body):
    id: int
    name: str


class EventRequest(_Body):
    """One change (or `count` changes) to a resource, announced to every hook.

    - `create`: `count` new resources with ids `resource_id`, `resource_id + 1`, … (fresh
      ids when `resource_id` is omitted).
    - `update`: the resource is updated `count` times, one event per update.
    - `delete`: the resource is removed (404 afterwards); `count` must be 1.
    - Any other `event_type`, or a `resource_name` the simulator does not serve: events
      only, no resource change (for receivers' unsupported-type paths).
    - `fan_out`: each change is announced once per project of the company (project_id set),
      the storm one directory edit causes.
    - `duplicate_rate`: the share of deliveries sent a second time (same id and ulid).
    - `reorder_rate`: the share of deliveries held back and sent, shuffled, after the rest of
      this request's deliveries (with `count` > 1 on `update`, later updates of a resource
      then arrive before earlier ones).
    """

    company_id: int
    project_id: int | None = None
    resource_name: str = Field(min_length=1)
    resource_id: int | None = None
    event_type: str = Field(default="update", min_length=1)
    reason: str | None = None
    count: int = Field(default=1, ge=1, le=100_000)
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    reorder_rate: float = Field(default=0.0, ge=0, le=1)
    fan_out: bool = False
    fields: dict[str, Any] = Field(default_factory=dict)
    user_id: int | None = None
    source_application_id: str | None = None
    related_resources: list[RelatedBody] = Field(default_factory=list)


class ControlApi:
    def __init__(self, sim: Simulator, sender: Sender) -> None:
        self.sim = sim
        self.sender = sender

    def routes(self) -> list[Route]:
        return [
            Route("/_sim", self.index, methods=["GET"]),
            Route("/_sim/reset", self.reset, methods=["POST"]),
            Route("/_sim/clients", self.register_client, methods=["POST"]),
            Route("/_sim/clients/{client_id}/revoke", self.revoke_client, methods=["POST"]),
            Route("/_sim/companies", self.list_companies, methods=["GET"]),
            Route("/_sim/companies/{company_id:int}", self.put_company, methods=["PUT"]),
            Route(
                "/_sim/companies/{company_id:int}/projects/{project_id:int}",
                self.put_project,
                methods=["PUT"],
            ),
            Route("/_sim/resources", self.list_resources, methods=["GET"]),
            Route("/_sim/resources", self.create_resource, methods=["POST"]),
            Route(
                "/_sim/resources/{resource_name}/{id:int}", self.delete_resource, methods=["DELETE"]
            ),
            Route("/_sim/events", self.events, methods=["POST"]),
            Route("/_sim/rate_limit", self.rate_limit, methods=["PUT"]),
            Route("/_sim/load_shedding", self.load_shedding, methods=["PUT"]),
            Route("/_sim/faults", self.faults, methods=["PUT"]),
            Route("/_sim/faults", self.clear_faults, methods=["DELETE"]),
            Route("/_sim/tokens", self.tokens, methods=["PUT"]),
            Route("/_sim/tokens/expire", self.expire_tokens, methods=["POST"]),
            Route("/_sim/switches", self.switches, methods=["PUT"]),
            Route("/_sim/clock", self.clock, methods=["POST"]),
            Route("/_sim/hooks", self.add_hook, methods=["POST"]),
            Route("/_sim/hooks", self.list_hooks, methods=["GET"]),
            Route("/_sim/hooks/{hook_id:int}", self.remove_hook, methods=["DELETE"]),
            Route("/_sim/hooks/{hook_id:int}/deliveries", self.deliveries, methods=["GET"]),
            Route("/_sim/hooks/{hook_id:int}/resume", self.resume_hook, methods=["POST"]),
            Route("/_sim/drain", self.drain, methods=["POST"]),
            Route("/_sim/calls", self.calls, methods=["GET"]),
            Route("/_sim/calls", self.clear_calls, methods=["DELETE"]),
            Route("/_sim/stats", self.stats, methods=["GET"]),
        ]

    async def index(self, request: Request) -> Response:
        listed = sorted(
            {f"{m} {r.path}" for r in self.routes() for m in (r.methods or ()) if m != "HEAD"}
        )
        return json_answer({"endpoints": listed})

    # -- world -----------------------------------------------------------------------------

    async def reset(self, request: Request) -> Response:
        await self.sender.clear()
        self.sim.reset()
        return json_answer({"reset": True})

    async def register_client(self, request: Request) -> Response:
        body = await _parse(request, ClientBody)
        if isinstance(body, Response):
            return body
        self.sim.tokens.register(body.client_id, body.client_secret)
        return json_answer({"client_id": body.client_id}, 201)

    async def revoke_client(self, request: Request) -> Response:
        client_id = request.path_params["client_id"]
        if not self.sim.tokens.revoke_client(client_id):
            return errors_answer(404, f"unknown client {client_id}")
        return json_answer({"client_id": client_id, "revoked": True})

    async def list_companies(self, request: Request) -> Response:
        return json_answer([self._company_view(cid) for cid in sorted(self.sim.companies)])

    async def put_company(self, request: Request) -> Response:
        body = await _parse(request, CompanyBody)
        if isinstance(body, Response):
            return body
        company_id = request.path_params["company_id"]
        company = self.sim.put_company(company_id, body.name, body.installed)
        if body.webhooks_api is not None:
            company.webhooks_api = body.webhooks_api
        if body.denied_tools is not None:
            unknown = sorted(set(body.denied_tools) - set(KINDS))
            if unknown:
                return errors_answer(422, f"unknown resource types: {', '.join(unknown)}")
            company.denied_tools = set(body.denied_tools)
        return json_answer(self._company_view(company_id))

    async def put_project(self, request: Request) -> Response:
        body = await _parse(request, ProjectBody)
        if isinstance(body, Response):
            return body
        company_id, project_id = (
            request.path_params["company_id"],
            request.path_params["project_id"],
        )
        if body.disabled_tools is not None:
            unknown = sorted(set(body.disabled_tools) - set(KINDS))
            if unknown:
                return errors_answer(422, f"unknown resource types: {', '.join(unknown)}")
        try:
            project = self.sim.put_project(company_id, project_id, body.name, body.permitted)
        except LookupError as exc:
            return errors_answer(404, str(exc))
        if body.disabled_tools is not None:
            self.sim.disabled_tools[project_id] = set(body.disabled_tools)
        return json_answer(self._project_view(project))

    async def list_resources(self, request: Request) -> Response:
        query = request.query_params
        try:
            kinds = [kind_of(query["resource_name"])] if "resource_name" in query else None
            company_id = int(query["company_id"]) if "company_id" in query else None
            project_id = int(query["project_id"]) if "project_id" in query else None
        except ValueError as exc:
            return errors_answer(400, str(exc))
        found = self.sim.find(company_id, project_id, kinds)
        return json_answer([self._resource_view(r) for r in found])

    async def create_resource(self, request: Request) -> Response:
        body = await _parse(request, ResourceBody)
        if isinstance(body, Response):
            return body
        try:
            resource = self.sim.add_resource(
                kind_of(body.resource_name), body.company_id, body.project_id, body.id, body.fields
            )
        except LookupError as exc:
            return errors_answer(404, str(exc))
        except ValueError as exc:
            return errors_answer(409, str(exc))
        return json_answer(self._resource_view(resource), 201)

    async def delete_resource(self, request: Request) -> Response:
        try:
            kind = kind_of(request.path_params["resource_name"])
        except ValueError as exc:
            return errors_answer(404, str(exc))
        resource = self.sim.resources.get((kind.name, request.path_params["id"]))
        if resource is None:
            return errors_answer(404, "no such resource")
        self.sim.delete_resource(resource)
        return json_answer({"deleted": True})

    async def events(self, request: Request) -> Response:
        body = await _parse(request, EventRequest)
        if isinstance(body, Response):
            return body
        if body.company_id not in self.sim.companies:
            return errors_answer(404, f"company {body.company_id} does not exist")
        changed = self._change(body)
        if isinstance(changed, Response):
            return changed
        resources, ids = changed
        sim = self.sim
        moments = [sim.now_dt() for _ in ids]
        projects = [p.id for p in sim.projects_of(body.company_id)] if body.fan_out else [None]
        changes = [
            self._announce(body, rid, at, project)
            for rid, at in zip(ids, moments, strict=True)
            for project in projects
        ]
        events, duplicates, reordered = self.sender.publish(
            changes, sim.event_ids, sim.rng, body.duplicate_rate, body.reorder_rate
        )
        return json_answer(
            {
                "resource_ids": ids,
                "resources": [None if r is None else self._resource_view(r) for r in resources],
                "changes": len(changes),
                "events": events,
                "duplicates": duplicates,
                "reordered": reordered,
                "hooks": len(self.sender.hooks),
            }
        )

    def _change(self, body: EventRequest) -> tuple[list[Resource | None], list[int]] | Response:
        """Apply the requested change; returns the resulting resources and their ids."""
        sim = self.sim
        kind = KINDS.get(body.resource_name)
        mutating = body.event_type in ("create", "update", "delete")
        if kind is None or not mutating:
            if body.resource_id is None:
                return errors_answer(422, "resource_id is required for this event")
            return [None] * body.count, [body.resource_id] * body.count
        project_id = None if kind.company_level else body.project_id
        if body.event_type == "create":
            made: list[Resource | None] = []
            for n in range(body.count):
                rid = None if body.resource_id is None else body.resource_id + n
                try:
                    made.append(
                        sim.add_resource(kind, body.company_id, project_id, rid, body.fields)
                    )
                except LookupError as exc:
                    return errors_answer(404, str(exc))
                except ValueError as exc:
                    return errors_answer(409, str(exc))
            return made, [r.id for r in made if r is not None]
        resource = (
            None if body.resource_id is None else sim.resources.get((kind.name, body.resource_id))
        )
        if resource is None or resource.company_id != body.company_id:
            return errors_answer(
                404, f"{kind} {body.resource_id} not found in company {body.company_id}"
            )
        if body.event_type == "delete":
            if body.count != 1:
                return errors_answer(422, "count must be 1 for delete")
            sim.delete_resource(resource)
            return [None], [resource.id]
        for _ in range(body.count):
            sim.update_resource(resource, body.fields)
        return [resource] * body.count, [resource.id] * body.count

    def _announce(
        self, body: EventRequest, resource_id: int, at: datetime, project: int | None
    ) -> Change:
        kind = KINDS.get(body.resource_name)
        company_level = kind is not None and kind.company_level
        project_id = (
            project if project is not None else (None if company_level else body.project_id)
        )
        user_id = body.user_id or self.sim.authorizing_user_id or 0
        related = tuple(RelatedResource(r.id, r.name) for r in body.related_resources)
        if not related and kind is not None and kind.parent and kind.parent_field:
            # A line item names its parent (v3.0 `related_resources`, FACTS.md §1).
            held = self.sim.resources.get((kind.name, resource_id))
            parent_id = None if held is None else held.fields.get(kind.parent_field)
            if isinstance(parent_id, int):
                related = (RelatedResource(parent_id, kind.parent),)
        return Change(
            event_type=body.event_type,
            resource_name=body.resource_name,
            resource_id=resource_id,
            company_id=body.company_id,
            project_id=project_id,
            user_id=user_id,
            timestamp=at,
            reason=body.reason,
            source_application_id=body.source_application_id,
            related_resources=related,
        )

    # -- behaviour -------------------------------------------------------------------------

    async def rate_limit(self, request: Request) -> Response:
        body = await _parse(request, RateLimitBody)
        if isinstance(body, Response):
            return body
        current = self.sim.rate_limiter.settings.model_dump()
        current.update(body.model_dump(exclude_none=True))
        settings = RateLimitSettings.model_validate(current)
        self.sim.rate_limiter.configure(settings)
        return json_answer(settings.model_dump())

    async def load_shedding(self, request: Request) -> Response:
        body = await _parse(request, SheddingBody)
        if isinstance(body, Response):
            return body
        shedding = Shedding(active=body.active, retry_after_s=body.retry_after_s)
        if body.company_id is None:
            self.sim.faults.shedding = shedding
        else:
            self.sim.faults.shedding_by_company[body.company_id] = shedding
        return json_answer(body.model_dump())

    async def faults(self, request: Request) -> Response:
        body = await _parse(request, FaultsBody)
        if isinstance(body, Response):
            return body
        settings = FaultSettings.model_validate(body.model_dump(exclude={"company_id", "rng_seed"}))
        plan = self.sim.faults
        if body.rng_seed is not None:
            plan.rng = random.Random(body.rng_seed)
        if body.company_id is None:
            plan.default = settings
        else:
            plan.by_company[body.company_id] = settings
        return json_answer(body.model_dump())

    async def clear_faults(self, request: Request) -> Response:
        plan = self.sim.faults
        plan.default = FaultSettings()
        plan.by_company.clear()
        plan.shedding = Shedding()
        plan.shedding_by_company.clear()
        return json_answer({"cleared": True})

    async def tokens(self, request: Request) -> Response:
        body = await _parse(request, TokensBody)
        if isinstance(body, Response):
            return body
        self.sim.tokens.access_ttl_s = body.access_token_ttl_s
        return json_answer({"access_token_ttl_s": body.access_token_ttl_s})

    async def expire_tokens(self, request: Request) -> Response:
        return json_answer({"expired": self.sim.tokens.expire_all(self.sim.now())})

    async def switches(self, request: Request) -> Response:
        body = await _parse(request, SwitchesBody)
        if isinstance(body, Response):
            return body
        merged = self.sim.switches.model_dump()
        merged.update(body.model_dump(exclude_none=True))
        try:
            switches = Switches.model_validate(merged)
        except ValidationError as exc:
            return _invalid(exc)
        self.sim.switches = switches
        self.sim.tokens.reuse_revokes_family = switches.refresh_reuse_revokes_family
        return json_answer(switches.model_dump())

    async def clock(self, request: Request) -> Response:
        body = await _parse(request, ClockBody)
        if isinstance(body, Response):
            return body
        self.sim.clock_offset_s += body.advance_s
        return json_answer({"offset_s": self.sim.clock_offset_s, "now": self.sim.now()})

    # -- webhooks --------------------------------------------------------------------------

    async def add_hook(self, request: Request) -> Response:
        body = await _parse(request, HookSettings)
        if isinstance(body, Response):
            return body
        hook = self.sender.add(body)
        return json_answer(hook.view(_loop_time()), 201)

    async def list_hooks(self, request: Request) -> Response:
        now = _loop_time()
        return json_answer([h.view(now) for h in self.sender.hooks.values()])

    async def remove_hook(self, request: Request) -> Response:
        if not await self.sender.remove(request.path_params["hook_id"]):
            return errors_answer(404, "no such hook")
        return json_answer({"deleted": True})

    async def deliveries(self, request: Request) -> Response:
        hook = self.sender.hooks.get(request.path_params["hook_id"])
        if hook is None:
            return errors_answer(404, "no such hook")
        return json_answer(list(hook.attempts))

    async def resume_hook(self, request: Request) -> Response:
        if not self.sender.resume(request.path_params["hook_id"]):
            return errors_answer(404, "no such hook")
        return json_answer({"resumed": True})

    async def drain(self, request: Request) -> Response:
        body = await _parse(request, DrainBody)
        if isinstance(body, Response):
            return body
        return json_answer({"drained": await self.sender.drain(body.timeout_s)})

    # -- observation -----------------------------------------------------------------------

    async def calls(self, request: Request) -> Response:
        query = request.query_params
        try:
            company_id = int(query["company_id"]) if query.get("company_id") else None
            project_id = int(query["project_id"]) if query.get("project_id") else None
        except ValueError as exc:
            return errors_answer(400, str(exc))
        return json_answer(self.sim.calls.summary(company_id, project_id))

    async def clear_calls(self, request: Request) -> Response:
        self.sim.calls.clear()
        return json_answer({"cleared": True})

    async def stats(self, request: Request) -> Response:
        sim = self.sim
        token_stats = sim.tokens.stats
        faults = sim.faults.counts
        return json_answer(
            {
                "token_grants": token_stats.grants,
                "refreshes": token_stats.refreshes,
                "oauth_errors": token_stats.errors,
                "invalid_grant": token_stats.errors["invalid_grant"],
                "rate_limited": sim.rate_limiter.refused,
                "faults": {
                    "errors": faults.errors,
                    "drops": faults.drops,
                    "lost_answers": faults.lost_answers,
                    "shed": faults.shed,
                    "delayed": faults.delayed,
                },
                "max_in_flight": {
                    "by_company": {
                        str(cid) if cid is not None else "none": n
                        for cid, n in sorted(
                            sim.calls.max_in_flight.items(), key=lambda kv: kv[0] or -1
                        )
                    },
                    "total": sim.calls.max_in_flight_total,
                },
                "deliveries": dict(self.sender.outcomes),
                "writes": _writes_view(sim),
            }
        )

    # -- views -----------------------------------------------------------------------------

    def _company_view(self, company_id: int) -> dict[str, Any]:
        company = self.sim.companies[company_id]
        return {
            "id": company.id,
            "name": company.name,
            "installed": company.installed,
            "webhooks_api": company.webhooks_api,
            "denied_tools": sorted(company.denied_tools),
            "projects": [self._project_view(p) for p in self.sim.projects_of(company_id)],
        }

    def _project_view(self, project: Resource) -> dict[str, Any]:
        return {
            "id": project.id,
            "company_id": project.company_id,
            "name": project.fields.get("name"),
            "permitted": self.sim.permitted.get(project.id, False),
            "disabled_tools": sorted(self.sim.disabled_tools.get(project.id, ())),
        }

    def _resource_view(self, resource: Resource) -> dict[str, Any]:
        return {
            "resource_name": resource.kind.name,
            "company_id": resource.company_id,
            "project_id": resource.project_id,
            "body": render(resource, self.sim.company_name(resource.company_id)),
        }


def _writes_view(sim: Simulator) -> dict[str, dict[str, int]]:
    """Changes clients' write calls applied, by kind and create|update|delete."""
    view: dict[str, dict[str, int]] = {}
    for (kind, operation), n in sorted(sim.writes_applied.items()):
        view.setdefault(kind, {})[operation] = n
    return view


async def _parse(request: Request, model: type[Model]) -> Model | Response:
    raw = await request.body()
    try:
        decoded = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return errors_answer(400, "body is not JSON")
    try:
        return model.model_validate(decoded)
    except ValidationError as exc:
        return _invalid(exc)


def _invalid(exc: ValidationError) -> Response:
    messages = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return errors_answer(422, *messages)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
