"""The Webhooks API subset (v1.0 hooks and triggers, FACTS.md §2) and its `/_sim` controls.

REST (behind the same gate as every REST call: token, rate limit, `Procore-Company-Id`, and
403 "not connected" for a company without the app):
- `GET /rest/v1.0/webhooks/hooks?company_id=&namespace=` (paginated) and
  `POST /rest/v1.0/webhooks/hooks` `{"company_id", "hook": {"api_version", "namespace",
  "destination_url", "destination_headers"}}` → 201.
- `GET|PATCH|DELETE /rest/v1.0/webhooks/hooks/{id}?company_id=`; PATCH takes any of the hook
  fields and `"status": "active"` (re-enable a hook Procore disabled).
- `GET|POST /rest/v1.0/webhooks/hooks/{id}/triggers?company_id=` (`{"trigger":
  {"resource_name", "event_type"}}`; a duplicate trigger is refused with 422) and
  `DELETE /rest/v1.0/webhooks/hooks/{id}/triggers/{trigger_id}?company_id=`.
- `GET /rest/v1.0/webhooks/hooks/{id}/deliveries?company_id=` → the delivery attempts.

A hook created here delivers, through the webhook sender, the changes of its company that its
triggers name, in its `api_version` payload format, with its `Authorization` header.

Control:
- `GET /_sim/webhooks` → every API hook (with triggers, status, sender id) and the write
  counters `{"POST", "PATCH", "DELETE", "total"}`.
- `PUT /_sim/webhooks/settings` `{"deactivate_after_failures"?, "time_scale"?}` (new hooks).
- `POST /_sim/webhooks/{id}/disable` → the hook is deactivated, as after repeated failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import NOT_FOUND, errors_answer, json_answer
from simulator.control import _parse
from simulator.hook_registry import ApiHook, ApiTrigger
from simulator.payloads import Change, PayloadVersion
from simulator.rest import Caller, RestApi
from simulator.sender import HookSettings, Sender
from simulator.state import Simulator

_HOOKS = "/rest/v1.0/webhooks/hooks"
EVENT_TYPES = ("create", "update", "delete")


class _Lenient(BaseModel):
    # Procore ignores fields it does not know; so does the simulator.
    model_config = ConfigDict(extra="ignore")


class HookFields(_Lenient):
    api_version: PayloadVersion | None = None
    namespace: str | None = Field(default=None, min_length=1)
    destination_url: str | None = None
    destination_headers: dict[str, str] | None = None
    status: str | None = Field(default=None, pattern="^(active|disabled)$")


class HookBody(_Lenient):
    company_id: int | None = None
    project_id: int | None = None
    hook: HookFields


class TriggerFields(_Lenient):
    resource_name: str = Field(min_length=1)
    event_type: str = Field(pattern="^(create|update|delete)$")


class TriggerBody(_Lenient):
    trigger: TriggerFields


class WebhookSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deactivate_after_failures: int | None = Field(default=None, ge=1)
    time_scale: float | None = Field(default=None, gt=0)


class WebhooksApi:
    def __init__(self, sim: Simulator, sender: Sender, rest: RestApi) -> None:
        self.sim = sim
        self.sender = sender
        self.rest = rest

    def routes(self) -> list[Route]:
        one = f"{_HOOKS}/{{hook_id:int}}"
        return [
            Route(_HOOKS, self.list_hooks, methods=["GET"]),
            Route(_HOOKS, self.create_hook, methods=["POST"]),
            Route(one, self.show_hook, methods=["GET"]),
            Route(one, self.update_hook, methods=["PATCH"]),
            Route(one, self.delete_hook, methods=["DELETE"]),
            Route(f"{one}/triggers", self.list_triggers, methods=["GET"]),
            Route(f"{one}/triggers", self.create_trigger, methods=["POST"]),
            Route(f"{one}/triggers/{{trigger_id:int}}", self.delete_trigger, methods=["DELETE"]),
            Route(f"{one}/deliveries", self.deliveries, methods=["GET"]),
            Route("/_sim/webhooks", self.control_view, methods=["GET"]),
            Route("/_sim/webhooks/settings", self.control_settings, methods=["PUT"]),
            Route("/_sim/webhooks/{hook_id:int}/disable", self.control_disable, methods=["POST"]),
        ]

    # -- hooks -----------------------------------------------------------------------------

    async def list_hooks(self, request: Request) -> Response:
        scope = self._scope(request)
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        namespace = request.query_params.get("namespace")
        hooks = self.sim.webhooks.of_company(company_id, namespace)
        return self.rest._page(request, [self._view(h) for h in hooks], caller.headers)

    async def create_hook(self, request: Request) -> Response:
        body = await _parse(request, HookBody)
        if isinstance(body, Response):
            return body
        scope = self._scope(request, body.company_id)
        if isinstance(scope, Response):
            return scope
        caller, company_id = scope
        fields = body.hook
        if not fields.namespace or not fields.destination_url:
            return errors_answer(
                422, "namespace and destination_url are required", headers=caller.headers
            )
        settings = self._sender_settings(
            fields.destination_url,
            fields.destination_headers or {},
            fields.api_version or PayloadVersion.V2,
        )
        if isinstance(settings, str):
            return errors_answer(422, settings, headers=caller.headers)
        registry = self.sim.webhooks
        hook = ApiHook(
            id=registry.next_hook_id(),
            company_id=company_id,
            project_id=body.project_id,
            namespace=fields.namespace,
            api_version=(fields.api_version or PayloadVersion.V2).value,
            destination_url=fields.destination_url,
            destination_headers=dict(fields.destination_headers or {}),
            created_at=self.sim.now_dt(),
        )
        hook.sender_hook_id = self.sender.add(settings, accepts=_accepts(hook)).id
        registry.hooks[hook.id] = hook
        registry.count_write("POST")
        return json_answer(self._view(hook), 201, caller.headers)

    async def show_hook(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        return json_answer(self._view(hook), headers=caller.headers)

    async def update_hook(self, request: Request) -> Response:
        body = await _parse(request, HookBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request, body.company_id)
        if isinstance(found, Response):
            return found
        caller, hook = found
        fields = body.hook
        url = fields.destination_url or hook.destination_url
        headers = (
            hook.destination_headers
            if fields.destination_headers is None
            else dict(fields.destination_headers)
        )
        version = fields.api_version or PayloadVersion(hook.api_version)
        settings = self._sender_settings(url, headers, version)
        if isinstance(settings, str):
            return errors_answer(422, settings, headers=caller.headers)
        hook.destination_url, hook.destination_headers = url, headers
        hook.api_version = version.value
        if fields.namespace:
            hook.namespace = fields.namespace
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        if sent is not None:
            sent.settings = settings
            if fields.status == "active":
                self.sender.reactivate(sent.id)
            elif fields.status == "disabled":
                self.sender.deactivate(sent.id)
        self.sim.webhooks.count_write("PATCH")
        return json_answer(self._view(hook), headers=caller.headers)

    async def delete_hook(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        del self.sim.webhooks.hooks[hook.id]
        if hook.sender_hook_id is not None:
            await self.sender.remove(hook.sender_hook_id)
        self.sim.webhooks.count_write("DELETE")
        return Response(status_code=204, headers=caller.headers)

    # -- triggers --------------------------------------------------------------------------

    async def list_triggers(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        triggers = [t.view() for t in sorted(hook.triggers.values(), key=lambda t: t.id)]
        return self.rest._page(request, triggers, caller.headers)

    async def create_trigger(self, request: Request) -> Response:
        body = await _parse(request, TriggerBody)
        if isinstance(body, Response):
            return body
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        wanted = body.trigger
        if hook.wants(wanted.resource_name, wanted.event_type):
            return errors_answer(422, "Trigger has already been taken", headers=caller.headers)
        trigger = ApiTrigger(
            self.sim.webhooks.next_trigger_id(), wanted.resource_name, wanted.event_type
        )
        hook.triggers[trigger.id] = trigger
        self.sim.webhooks.count_write("POST")
        return json_answer(trigger.view(), 201, caller.headers)

    async def delete_trigger(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        if hook.triggers.pop(request.path_params["trigger_id"], None) is None:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        self.sim.webhooks.count_write("DELETE")
        return Response(status_code=204, headers=caller.headers)

    async def deliveries(self, request: Request) -> Response:
        found = self._hook(request)
        if isinstance(found, Response):
            return found
        caller, hook = found
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        attempts = [] if sent is None else list(sent.attempts)
        return self.rest._page(request, attempts, caller.headers)

    # -- control ---------------------------------------------------------------------------

    async def control_view(self, request: Request) -> Response:
        registry = self.sim.webhooks
        hooks = [
            {
                **self._view(h),
                "triggers": [t.view() for t in sorted(h.triggers.values(), key=lambda t: t.id)],
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
        return json_answer(
            {
                "deactivate_after_failures": registry.deactivate_after_failures,
                "time_scale": registry.time_scale,
            }
        )

    async def control_disable(self, request: Request) -> Response:
        hook = self.sim.webhooks.hooks.get(request.path_params["hook_id"])
        if hook is None or hook.sender_hook_id is None:
            return errors_answer(404, "no such hook")
        self.sender.deactivate(hook.sender_hook_id)
        return json_answer(self._view(hook))

    # -- helpers ---------------------------------------------------------------------------

    def _scope(self, request: Request, named: int | None = None) -> tuple[Caller, int] | Response:
        caller = self.rest._caller(request)
        if isinstance(caller, Response):
            return caller
        query = request.query_params.get("company_id")
        company_id = named if named is not None else _int(query)
        if company_id is None:
            company_id = caller.company_id
        denied = self.rest._company_denied(company_id, caller)
        if denied is not None:
            return denied
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

    def _view(self, hook: ApiHook) -> dict[str, Any]:
        sent = self.sender.hooks.get(hook.sender_hook_id or 0)
        return {
            "id": hook.id,
            "namespace": hook.namespace,
            "owned_by_company_id": hook.company_id,
            "owned_by_project_id": hook.project_id,
            "api_version": hook.api_version,
            "destination_url": hook.destination_url,
            "destination_headers": dict(hook.destination_headers),
            "status": "active" if sent is not None and sent.active else "disabled",
            "created_at": hook.created_at.isoformat(),
        }


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
