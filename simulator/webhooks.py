"""Procore's Webhooks API (FACTS.md §9; `plan_your_app/webhooks_api.md`, the OpenAPI
operations named below) and its `/_sim` controls.

Every call passes the same gate as any REST call (token, rate limit, `Procore-Company-Id`,
403 "not connected" for a company without the app), then the app's Webhooks API tool
permission (403 without it).

v1.0 (`RestV10Webhooks*`):
- `GET /rest/v1.0/webhooks/hooks?company_id=&namespace=` → every hook, not paginated; a hook
  object is exactly `id, api_version, namespace, destination_url, destination_headers
  (Authorization masked to its last 5 characters), owned_by_company_id, owned_by_project_id,
  owned_by_user_id` — no `status`.
- `POST /rest/v1.0/webhooks/hooks` `{"company_id", "hook": {"api_version", "namespace",
  "destination_url", "destination_headers"}}` → 201; `api_version` `v2|v2.0|v3|v3.0|v4|v4.0`;
  namespace `[a-z0-9-]+`; destination https (unless the `allow_http_destinations` switch).
- `GET|PATCH|DELETE /rest/v1.0/webhooks/hooks/{id}?company_id=`: PATCH takes `api_version,
  namespace, destination_url, destination_headers` only; DELETE answers 200.
- `GET|POST /rest/v1.0/webhooks/hooks/{id}/triggers`: POST `{"company_id", "api_version",
  "trigger": {"resource_name", "event_type"}}` (api_version required); event types compared
  without case, refused when `/webhooks/resources` lists them in `except`; answers carry
  `event_type` upper-cased (switch `trigger_event_type_upper`). `DELETE …/triggers/{id}` → 200.
- `GET /rest/v1.0/webhooks/resources?company_id=` → `[{"api_version", "product_category",
  "tools": <resource name>, "except": [...], "create", "update", "delete"}]`;
  `GET /rest/v1.0/webhooks/resources/api_versions` → the accepted versions.
- `GET /rest/v1.0/webhooks/hooks/{id}/deliveries?filter[status]=any|successful|discarded|
  failing` (also `filters[status]`), `page_size`, `page_start` (the last `event_id` of the
  previous page) → `[{event, event_id, outcome, response_status, response_headers,
  response_body, response_error, started_at, completed_at}]`.

v2.0 (`RestV20CompaniesCompanyIdWebhooksHooks*`), the only one that shows and changes
`status`: `GET|POST /rest/v2.0/companies/{cid}/webhooks/hooks` (list paginated, `per_page`
default 10; POST flat `{"payload_version", "namespace", "destination_url",
"destination_headers"}`), `GET|PATCH|DELETE …/hooks/{id}` (PATCH may set `"status":
"active"|"disabled"`; DELETE 204), `GET|POST …/hooks/{id}/triggers` (flat `{"resource_name",
"event_type"}`), `DELETE …/triggers/{id}` (204). `{"data": …}` envelopes, string ids.

A hook delivers, through the webhook sender, the changes of its company that its triggers
name, in its payload version, with its `Authorization` header.

Control:
- `GET /_sim/webhooks` → every API hook (full headers, triggers, status, sender id) and the
  write counters `{"POST", "PATCH", "DELETE", "total"}`.
- `PUT /_sim/webhooks/settings` `{"deactivate_after_failures"?, "time_scale"?,
  "refused_triggers"?: [["RFIs", "delete"], …]}` (the API then refuses those with 422).
- `POST /_sim/webhooks/{id}/disable` → the hook is deactivated, as after repeated failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import NOT_FOUND, errors_answer, json_answer
from simulator.control import _parse
from simulator.hook_registry import NAMESPACE, ApiHook, ApiTrigger
from simulator.payloads import Change, PayloadVersion
from simulator.resources import KINDS, OTHER_WEBHOOK_RESOURCES
from simulator.rest import Caller, RestApi
from simulator.sender import HookSettings, Sender
from simulator.state import Simulator

_HOOKS = "/rest/v1.0/webhooks/hooks"
_V2 = "/rest/v2.0/companies/{company_id:int}/webhooks/hooks"
EVENT_TYPES = ("create", "update", "delete")
API_VERSIONS = {
    "v2": PayloadVersion.V2,
    "v2.0": PayloadVersion.V2,
    "v3": PayloadVersion.V3,
    "v3.0": PayloadVersion.V3,
    "v4": PayloadVersion.V4,
    "v4.0": PayloadVersion.V4,
}
FORBIDDEN_WEBHOOKS = "You do not have permission to access the Webhooks API."
_DELIVERY_FILTERS = {
    "any": None,
    "successful": {"ok"},
    "discarded": {"discarded"},
    "failing": {"retried", "failed"},
}


class _Lenient(BaseModel):
    # Procore ignores fields it does not know; so does the simulator.
    model_config = ConfigDict(extra="ignore")


def _version(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() not in API_VERSIONS:
        raise ValueError(f"api_version must be one of {', '.join(API_VERSIONS)}")
    return value


class HookFields(_Lenient):
    api_version: str | None = None
    namespace: str | None = Field(default=None, min_length=1)
    destination_url: str | None = None
    destination_headers: dict[str, str] | None = None

    _v = field_validator("api_version")(_version)


class HookBody(_Lenient):
    company_id: int | None = None
    project_id: int | None = None
    hook: HookFields


class V2HookBody(_Lenient):
    payload_version: str | None = None
    namespace: str | None = Field(default=None, min_length=1)
    destination_url: str | None = None
    destination_headers: dict[str, str] | None = None
    status: str | None = Field(default=None, pattern="^(active|disabled)$")

    _v = field_validator("payload_version")(_version)


class TriggerFields(_Lenient):
    resource_name: str = Field(min_length=1)
    event_type: str = Field(pattern="(?i)^(create|update|delete)$")


class TriggerBody(_Lenient):
    api_version: str = Field(min_length=1)
    trigger: TriggerFields

    _v = field_validator("api_version")(_version)


class BulkTriggerBody(_Lenient):
    api_version: str = Field(min_length=1)
    triggers: list[dict[str, Any]]

    _v = field_validator("api_version")(_version)


# `…/triggers/bulk` takes at most this many (413 beyond).
BULK_MAX = 500


class WebhookSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deactivate_after_failures: int | None = Field(default=None, ge=1)
    time_scale: float | None = Field(default=None, gt=0)
    refused_triggers: list[tuple[str, str]] | None = None


class WebhooksApi:
    def __init__(self, sim: Simulator, sender: Sender, rest: RestApi) -> None:
        self.sim = sim
        self.sender = sender
        self.rest = rest

    def routes(self) -> list[Route]:
        one = f"{_HOOKS}/{{hook_id:int}}"
        v2_one = f"{_V2}/{{hook_id:int}}"
        return [
            Route(_HOOKS, self.list_hooks, methods=["GET"]),
            Route(_HOOKS, self.create_hook, methods=["POST"]),
            Route(one, self.show_hook, methods=["GET"]),
            Route(one, self.update_hook, methods=["PATCH"]),
            Route(one, self.delete_hook, methods=["DELETE"]),
            Route(f"{one}/triggers", self.list_triggers, methods=["GET"]),
            Route(f"{one}/triggers", self.create_trigger, methods=["POST"]),
            Route(f"{one}/triggers/bulk", self.create_triggers, methods=["POST"]),
            Route(f"{one}/triggers/{{trigger_id:int}}", self.delete_trigger, methods=["DELETE"]),
            Route(f"{one}/deliveries", self.deliveries, methods=["GET"]),
            Route("/rest/v1.0/webhooks/resources", self.subscribable, methods=["GET"]),
            Route("/rest/v1.0/webhooks/resources/api_versions", self.api_versions),
            Route(_V2, self.v2_list, methods=["GET"]),
            Route(_V2, self.v2_create, methods=["POST"]),
            Route(v2_one, self.v2_show, methods=["GET"]),
            Route(v2_one, self.v2_update, methods=["PATCH"]),
            Route(v2_one, self.v2_delete, methods=["DELETE"]),
            Route(f"{v2_one}/triggers", self.v2_triggers, methods=["GET"]),
            Route(f"{v2_one}/triggers", self.v2_create_trigger, methods=["POST"]),
            Route(
                f"{v2_one}/triggers/{{trigger_id:int}}", self.v2_delete_trigger, methods=["DELETE"]
            ),
            Route("/_sim/webhooks", self.control_view, methods=["GET"]),
            Route("/_sim/webhooks/settings", self.control_settings, methods=["PUT"]),
            Route("/_sim/webhooks/{hook_id:int}/disable", self.control_disable, methods=["POST"]),
        ]

    # -- v1.0 hooks --------------------------------------------------------------------------

    async def list_hooks(self, request: Request) -> Response:
        scope = self._scope(request)
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        namespace = request.query_params.get("namespace")
        hooks = self.sim.webhooks.of_company(company_id, namespace)
        # Not paginated (RestV10WebhooksHooksGet takes no page parameters).
        return json_answer([self._v1(h) for h in hooks], headers=caller.headers)

    async def create_hook(self, request: Request) -> Response:
        body = await _parse(request, HookBody)
        if isinstance(body, Response):
            return body
        scope = self._scope(request, body.company_id)
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        fields = body.hook
        made = self._new_hook(
            caller,
            company_id,
            body.project_id,
            fields.namespace,
            fields.destination_url,
            fields.destination_headers,
            fields.api_version,
        )
        if isinstance(made, Response):
            return made
        return json_answer(self._v1(made), 201, caller.headers)

    async def show_hook(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        return json_answer(self._v1(hook), headers=caller.headers)

    async def update_hook(self, request: Request) -> Response:
        body = await _parse(request, HookBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request, body.company_id)
        if isinstance(found, Response):
            return found
        caller, hook = found
        fields = body.hook
        # The v1.0 PATCH takes no `status` (only the v2.0 API can change it).
        changed = self._change_hook(
            caller,
            hook,
            fields.namespace,
            fields.destination_url,
            fields.destination_headers,
            fields.api_version,
            None,
        )
        if isinstance(changed, Response):
            return changed
        return json_answer(self._v1(hook), headers=caller.headers)

    async def delete_hook(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        await self._remove(hook)
        return Response(status_code=200, headers=caller.headers)

    # -- v1.0 triggers -----------------------------------------------------------------------

    async def list_triggers(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        return json_answer(self._trigger_views(hook), headers=caller.headers)

    async def create_trigger(self, request: Request) -> Response:
        body = await _parse(request, TriggerBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        made = self._new_trigger(caller, hook, body.trigger.resource_name, body.trigger.event_type)
        if isinstance(made, Response):
            return made
        return json_answer(made.view(upper=self._upper), 201, caller.headers)

    async def create_triggers(self, request: Request) -> Response:
        """`RestV10WebhooksHooksHookIdTriggersBulkPost`: 200 `{"success": [...]}`, or 207
        with `failed` entries `{"code", "message", "trigger", "errors"}`."""
        body = await _parse(request, BulkTriggerBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        if len(body.triggers) > BULK_MAX:
            return errors_answer(413, f"at most {BULK_MAX} triggers", headers=caller.headers)
        made: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for item in body.triggers:
            try:
                wanted = TriggerFields.model_validate(item)
            except ValidationError as exc:
                failed.append(
                    _bulk_failure(item, 422, "invalid trigger", str(exc.errors()[0]["msg"]))
                )
                continue
            trigger = self._new_trigger(caller, hook, wanted.resource_name, wanted.event_type)
            if isinstance(trigger, Response):
                message = orjson.loads(trigger.body)["errors"][0]
                failed.append(_bulk_failure(item, trigger.status_code, message, message))
            else:
                made.append(trigger.view(upper=self._upper))
        answer: dict[str, Any] = {"success": made}
        if failed:
            answer["failed"] = failed
        return json_answer(answer, 207 if failed else 200, caller.headers)

    async def delete_trigger(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        if hook.triggers.pop(request.path_params["trigger_id"], None) is None:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        self.sim.webhooks.count_write("DELETE")
        return Response(status_code=200, headers=caller.headers)

    async def deliveries(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        query = request.query_params
        wanted_name = query.get("filter[status]") or query.get("filters[status]") or "any"
        if wanted_name not in _DELIVERY_FILTERS:
            return errors_answer(
                400, "filter[status] must be any, successful, discarded or failing"
            )
        wanted = _DELIVERY_FILTERS[wanted_name]
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        records = [] if sent is None else list(sent.deliveries.values())
        views = [r.view() for r in records if wanted is None or r.outcome in wanted]
        start = query.get("page_start")
        if start is not None:
            ids = [str(v["event_id"]) for v in views]
            views = views[ids.index(start) + 1 :] if start in ids else []
        size = _int(query.get("page_size")) or 100
        return json_answer(views[: max(1, min(size, 1000))], headers=caller.headers)

    async def subscribable(self, request: Request) -> Response:
        scope = self._scope(request)
        if isinstance(scope, Response):
            return scope
        caller, _ = scope
        listed = [(k.name, k.category, k.events) for k in KINDS.values()] + [
            (name, "Other", events) for name, events in OTHER_WEBHOOK_RESOURCES.items()
        ]
        return json_answer(
            [
                {
                    "api_version": "v2",
                    "product_category": category,
                    "tools": name,
                    "except": [e for e in EVENT_TYPES if e not in events],
                    "create": None,
                    "update": None,
                    "delete": None,
                }
                for name, category, events in sorted(listed)
            ],
            headers=caller.headers,
        )

    async def api_versions(self, request: Request) -> Response:
        scope = self._scope(request)
        if isinstance(scope, Response):
            return scope
        caller, _ = scope
        return json_answer(["v2", "v3", "v4"], headers=caller.headers)

    # -- v2.0 --------------------------------------------------------------------------------

    async def v2_list(self, request: Request) -> Response:
        scope = self._scope(request, request.path_params["company_id"])
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        namespace = request.query_params.get("namespace")
        hooks = [self._v2(h) for h in self.sim.webhooks.of_company(company_id, namespace)]
        per_page = min(100, max(1, _int(request.query_params.get("per_page")) or 10))
        page = max(1, _int(request.query_params.get("page")) or 1)
        headers = {**caller.headers, "Total": str(len(hooks)), "Per-Page": str(per_page)}
        shown = hooks[(page - 1) * per_page : page * per_page]
        return json_answer({"data": shown}, headers=headers)

    async def v2_create(self, request: Request) -> Response:
        body = await _parse(request, V2HookBody)
        if isinstance(body, Response):
            return body
        scope = self._scope(request, request.path_params["company_id"])
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        made = self._new_hook(
            caller,
            company_id,
            None,
            body.namespace,
            body.destination_url,
            body.destination_headers,
            body.payload_version,
        )
        if isinstance(made, Response):
            return made
        return json_answer({"data": self._v2(made)}, 201, caller.headers)

    async def v2_show(self, request: Request) -> Response:
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        return json_answer({"data": self._v2(hook)}, headers=caller.headers)

    async def v2_update(self, request: Request) -> Response:
        body = await _parse(request, V2HookBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        changed = self._change_hook(
            caller,
            hook,
            body.namespace,
            body.destination_url,
            body.destination_headers,
            body.payload_version,
            body.status,
        )
        if isinstance(changed, Response):
            return changed
        return json_answer({"data": self._v2(hook)}, headers=caller.headers)

    async def v2_delete(self, request: Request) -> Response:
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        await self._remove(hook)
        return Response(status_code=204, headers=caller.headers)

    async def v2_triggers(self, request: Request) -> Response:
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        return json_answer(
            {"data": [_v2_ids(t) for t in self._trigger_views(hook)]}, headers=caller.headers
        )

    async def v2_create_trigger(self, request: Request) -> Response:
        body = await _parse(request, TriggerFields)
        if isinstance(body, Response):
            return body
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        made = self._new_trigger(caller, hook, body.resource_name, body.event_type)
        if isinstance(made, Response):
            return made
        return json_answer({"data": _v2_ids(made.view(upper=self._upper))}, 201, caller.headers)

    async def v2_delete_trigger(self, request: Request) -> Response:
        found = self._hook(request, request.path_params["company_id"])
        if isinstance(found, Response):
            return found
        caller, hook = found
        if hook.triggers.pop(request.path_params["trigger_id"], None) is None:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        self.sim.webhooks.count_write("DELETE")
        return Response(status_code=204, headers=caller.headers)

    # -- control -----------------------------------------------------------------------------

    async def control_view(self, request: Request) -> Response:
        registry = self.sim.webhooks
        hooks = [
            {
                **self._v1(h),
                "destination_headers": dict(h.destination_headers),
                "status": self._status(h),
                "triggers": self._trigger_views(h, upper=False),
                "sender_hook_id": h.sender_hook_id,
            }
            for h in sorted(registry.hooks.values(), key=lambda h: h.id)
        ]
        writes = {k: registry.writes.get(k, 0) for k in ("POST", "PATCH", "DELETE", "total")}
        return json_answer({"hooks": hooks, "writes": writes})

    async def control_settings(self, request: Request) -> Response:
        body = await _parse(request, WebhookSettingsBody)
        if isinstance(body, Response):
            return body
        registry = self.sim.webhooks
        if "deactivate_after_failures" in body.model_fields_set:
            registry.deactivate_after_failures = body.deactivate_after_failures
        if body.time_scale is not None:
            registry.time_scale = body.time_scale
        if body.refused_triggers is not None:
            registry.refused_triggers = {(r, e.lower()) for r, e in body.refused_triggers}
        return json_answer(
            {
                "deactivate_after_failures": registry.deactivate_after_failures,
                "time_scale": registry.time_scale,
                "refused_triggers": sorted(registry.refused_triggers),
            }
        )

    async def control_disable(self, request: Request) -> Response:
        hook = self.sim.webhooks.hooks.get(request.path_params["hook_id"])
        if hook is None or hook.sender_hook_id is None:
            return errors_answer(404, "no such hook")
        self.sender.deactivate(hook.sender_hook_id)
        return json_answer({**self._v1(hook), "status": self._status(hook)})

    # -- the rules ---------------------------------------------------------------------------

    @property
    def _upper(self) -> bool:
        return self.sim.switches.trigger_event_type_upper

    def _new_hook(
        self,
        caller: Caller,
        company_id: int,
        project_id: int | None,
        namespace: str | None,
        url: str | None,
        headers: dict[str, str] | None,
        version: str | None,
    ) -> ApiHook | Response:
        if not namespace or not url or not version:
            return errors_answer(
                422,
                "namespace, destination_url and api_version are required",
                headers=caller.headers,
            )
        problem = self._hook_rules(namespace, url)
        if problem is not None:
            return errors_answer(422, problem, headers=caller.headers)
        settings = self._sender_settings(url, headers or {}, API_VERSIONS[version.lower()])
        if isinstance(settings, str):
            return errors_answer(422, settings, headers=caller.headers)
        registry = self.sim.webhooks
        hook = ApiHook(
            id=registry.next_hook_id(),
            company_id=company_id,
            project_id=project_id,
            user_id=self.rest._principal(caller.token).id,
            namespace=namespace,
            api_version=version,
            destination_url=url,
            destination_headers=dict(headers or {}),
            created_at=self.sim.now_dt(),
        )
        hook.sender_hook_id = self.sender.add(settings, accepts=_accepts(hook)).id
        registry.hooks[hook.id] = hook
        registry.count_write("POST")
        return hook

    def _change_hook(
        self,
        caller: Caller,
        hook: ApiHook,
        namespace: str | None,
        url: str | None,
        headers: dict[str, str] | None,
        version: str | None,
        status: str | None,
    ) -> Response | None:
        url = url or hook.destination_url
        problem = self._hook_rules(namespace or hook.namespace, url)
        if problem is not None:
            return errors_answer(422, problem, headers=caller.headers)
        kept = hook.destination_headers if headers is None else dict(headers)
        version = version or hook.api_version
        settings = self._sender_settings(url, kept, API_VERSIONS[version.lower()])
        if isinstance(settings, str):
            return errors_answer(422, settings, headers=caller.headers)
        hook.destination_url, hook.destination_headers, hook.api_version = url, kept, version
        if namespace:
            hook.namespace = namespace
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        if sent is not None:
            sent.settings = settings
            if status == "active":
                self.sender.reactivate(sent.id)
            elif status == "disabled":
                self.sender.deactivate(sent.id)
        self.sim.webhooks.count_write("PATCH")
        return None

    def _hook_rules(self, namespace: str, url: str) -> str | None:
        if not NAMESPACE.match(namespace):
            return "namespace: allowed characters are lowercase a-z, digits 0-9 and dashes"
        if not url.startswith("https://") and not self.sim.switches.allow_http_destinations:
            return "destination_url must be publicly accessible over HTTPS"
        return None

    def _new_trigger(
        self, caller: Caller, hook: ApiHook, resource_name: str, event_type: str
    ) -> ApiTrigger | Response:
        event = event_type.lower()
        if hook.wants(resource_name, event):
            return errors_answer(422, "Trigger has already been taken", headers=caller.headers)
        kind = KINDS.get(resource_name)
        events = kind.events if kind is not None else OTHER_WEBHOOK_RESOURCES.get(resource_name)
        if events is None:
            unknown = f"resource_name {resource_name!r} is not a webhooks resource"
            return errors_answer(422, unknown, headers=caller.headers)
        if event not in events:
            return errors_answer(
                422,
                f"{resource_name} cannot be subscribed to {event} events",
                headers=caller.headers,
            )
        if (resource_name, event) in self.sim.webhooks.refused_triggers:
            return errors_answer(
                422, f"{resource_name} {event}: trigger refused", headers=caller.headers
            )
        trigger = ApiTrigger(
            self.sim.webhooks.next_trigger_id(),
            hook.id,
            resource_name,
            event,
            hook.company_id,
            hook.project_id,
            self.rest._principal(caller.token).id,
        )
        hook.triggers[trigger.id] = trigger
        self.sim.webhooks.count_write("POST")
        return trigger

    async def _remove(self, hook: ApiHook) -> None:
        del self.sim.webhooks.hooks[hook.id]
        if hook.sender_hook_id is not None:
            await self.sender.remove(hook.sender_hook_id)
        self.sim.webhooks.count_write("DELETE")

    # -- helpers -----------------------------------------------------------------------------

    def _scope(self, request: Request, named: int | None = None) -> tuple[Caller, int] | Response:
        caller = self.rest._caller(request)
        if isinstance(caller, Response):
            return caller
        company_id = named if named is not None else _int(request.query_params.get("company_id"))
        if company_id is None:
            company_id = caller.company_id
        denied = self.rest._company_denied(company_id, caller)
        if denied is not None:
            return denied
        company = self.sim.companies[company_id]
        if not company.webhooks_api:
            return errors_answer(403, FORBIDDEN_WEBHOOKS, headers=caller.headers)
        return caller, company_id

    def _hook(
        self, request: Request, named: int | None = None
    ) -> tuple[Caller, ApiHook] | Response:
        scope = self._scope(request, named)
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        hook = self.sim.webhooks.hooks.get(request.path_params["hook_id"])
        if hook is None or hook.company_id != company_id:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        return caller, hook

    def _sender_settings(
        self, url: str, headers: dict[str, str], version: PayloadVersion
    ) -> HookSettings | str:
        registry = self.sim.webhooks
        try:
            return HookSettings(
                destination_url=url,
                authorization=headers.get("Authorization", ""),
                payload_version=version,
                deactivate_after_failures=registry.deactivate_after_failures,
                time_scale=registry.time_scale,
            )
        except ValidationError as exc:
            return "; ".join(str(e["msg"]) for e in exc.errors())

    def _status(self, hook: ApiHook) -> str:
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        return "active" if sent is not None and sent.active else "disabled"

    def _trigger_views(self, hook: ApiHook, upper: bool | None = None) -> list[dict[str, Any]]:
        shown = self._upper if upper is None else upper
        return [t.view(upper=shown) for t in sorted(hook.triggers.values(), key=lambda t: t.id)]

    def _v1(self, hook: ApiHook) -> dict[str, Any]:
        """The v1.0 hook object (OpenAPI `WebhooksHook`): no status, a masked header."""
        return {
            "id": hook.id,
            "api_version": hook.api_version,
            "namespace": hook.namespace,
            "destination_url": hook.destination_url,
            "destination_headers": hook.masked_headers(),
            "owned_by_company_id": hook.company_id,
            "owned_by_project_id": hook.project_id,
            "owned_by_user_id": hook.user_id,
        }

    def _v2(self, hook: ApiHook) -> dict[str, Any]:
        return {
            "id": str(hook.id),
            "status": self._status(hook),
            "payload_version": API_VERSIONS[hook.api_version.lower()].value,
            "namespace": hook.namespace,
            "destination_url": hook.destination_url,
            "destination_headers": hook.masked_headers(),
            "trigger_count": len(hook.triggers),
            "company_id": None if hook.company_id is None else str(hook.company_id),
            "project_id": None if hook.project_id is None else str(hook.project_id),
            "created_at": hook.created_at.isoformat(),
            "updated_at": hook.created_at.isoformat(),
        }


def _bulk_failure(item: dict[str, Any], code: int, message: str, error: str) -> dict[str, Any]:
    return {
        "code": str(code),
        "message": message,
        "trigger": {k: item.get(k) for k in ("resource_name", "event_type")},
        "errors": {"trigger": error},
    }


def _v2_ids(view: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if k.endswith("id") and isinstance(v, int) else v) for k, v in view.items()}


def _accepts(hook: ApiHook) -> Callable[[Change], bool]:
    def accepts(change: Change) -> bool:
        return change.company_id == hook.company_id and hook.wants(
            change.resource_name, change.event_type
        )

    return accepts


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
