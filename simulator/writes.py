"""Procore's write calls for the kinds that have `writes` (FACTS.md §11): create, update,
delete, and the sync actions.

Every call passes the same gate as a read (`RestApi._scope`: token, rate limit,
`Procore-Company-Id`, install, project permission), then Procore's validation answers:

- A body that is not JSON, or lacks the wrapper key (`{"rfi": {...}}`) or `updates` → 400
  `{"errors": [...]}` (Rails' "param is missing or the value is empty: rfi").
- A create or update missing a field the operation requires → 422
  `{"errors": {"subject": ["can't be blank"]}}`.
- Sync (`tutorials/using_sync_actions.md`): at most 1000 items; each is matched by `id`
  (not found → an error) or by `origin_id` (found → update, not found → create), neither →
  create. The answer is always 200 `{"entities": [...], "errors": [...]}`; a failed item is
  echoed with an `errors` attribute holding the reasons. `origin_id` is unique per kind
  within a company: one used in another project of the company is refused.

Each change applied is announced to the hooks like any other, with
`metadata.source_application_id` = the OAuth client id of the token that made it (the echo a
connector must recognise as its own, FACTS.md §1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import NOT_FOUND, errors_answer, json_answer
from simulator.payloads import Change
from simulator.resources import KINDS_LIST, Kind, Resource, Writes, render
from simulator.rest import Caller, RestApi, _int, _route_path
from simulator.sender import Sender
from simulator.state import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_SYNC_ITEMS = 1000
# Larger bodies are refused (413) before they are read.
MAX_BODY_BYTES = 10 * 1024 * 1024
BLANK = "can't be blank"


class WritesApi:
    def __init__(self, sim: Simulator, sender: Sender, rest: RestApi) -> None:
        self.sim = sim
        self.sender = sender
        self.rest = rest

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for kind in KINDS_LIST:
            writes = kind.writes
            if writes is None:
                continue
            for template, method, handler in (
                (writes.create, "POST", self._create),
                (writes.update, "PATCH", self._update),
                (writes.delete, "DELETE", self._delete),
                (writes.sync, "PATCH", self._sync),
            ):
                if template is not None:
                    endpoint = handler(kind, writes, template)
                    routes.append(Route(_route_path(template), endpoint, methods=[method]))
        return routes

    # -- create, update, delete ------------------------------------------------------------

    def _create(self, kind: Kind, writes: Writes, template: str) -> Endpoint:
        async def create(request: Request) -> Response:
            parsed = await self._open(request, kind, template, writes.body_scope)
            if isinstance(parsed, Response):
                return parsed
            caller, company_id, project_id, body = parsed
            fields = _wrapped(body, writes.wrapper, caller)
            if isinstance(fields, Response):
                return fields
            missing = _missing(fields, writes.create_requires)
            if missing:
                return json_answer({"errors": missing}, 422, caller.headers)
            try:
                made = self.sim.add_resource(kind, company_id, project_id, None, _clean(fields))
            except ValueError as exc:
                return json_answer({"errors": {"base": [str(exc)]}}, 422, caller.headers)
            self._announce(caller, "create", made)
            return json_answer(self._render(made), 201, caller.headers)

        return create

    def _update(self, kind: Kind, writes: Writes, template: str) -> Endpoint:
        async def update(request: Request) -> Response:
            parsed = await self._open(request, kind, template, writes.body_scope)
            if isinstance(parsed, Response):
                return parsed
            caller, company_id, project_id, body = parsed
            fields = _wrapped(body, writes.wrapper, caller)
            if isinstance(fields, Response):
                return fields
            resource = self._held(kind, request, company_id, project_id)
            if resource is None:
                return errors_answer(404, NOT_FOUND, headers=caller.headers)
            missing = _missing(fields, writes.update_requires)
            if missing:
                return json_answer({"errors": missing}, 422, caller.headers)
            try:
                self.sim.write_resource(resource, _clean(fields))
            except ValueError as exc:
                return json_answer({"errors": {"origin_id": [str(exc)]}}, 422, caller.headers)
            self._announce(caller, "update", resource)
            return json_answer(self._render(resource), 200, caller.headers)

        return update

    def _delete(self, kind: Kind, writes: Writes, template: str) -> Endpoint:
        async def delete(request: Request) -> Response:
            scope = self.rest._scope(request, kind, template)
            if isinstance(scope, Response):
                return scope
            caller, company_id, project_id = scope
            resource = self._held(kind, request, company_id, project_id)
            if resource is None:
                return errors_answer(404, NOT_FOUND, headers=caller.headers)
            self.sim.delete_resource(resource)
            self._announce(caller, "delete", resource)
            if writes.delete_status == 204:
                return Response(status_code=204, headers=caller.headers)
            return json_answer({}, writes.delete_status, caller.headers)

        return delete

    # -- sync ------------------------------------------------------------------------------

    def _sync(self, kind: Kind, writes: Writes, template: str) -> Endpoint:
        async def sync(request: Request) -> Response:
            parsed = await self._open(request, kind, template, writes.sync_body_scope)
            if isinstance(parsed, Response):
                return parsed
            caller, company_id, project_id, body = parsed
            updates = body.get("updates")
            if not isinstance(updates, list) or not updates:
                return errors_answer(
                    400, "param is missing or the value is empty: updates", headers=caller.headers
                )
            if len(updates) > MAX_SYNC_ITEMS:
                return errors_answer(
                    422,
                    f"updates: at most {MAX_SYNC_ITEMS} items per call",
                    headers=caller.headers,
                )
            entities: list[dict[str, Any]] = []
            errors: list[dict[str, Any]] = []
            for item in updates:
                outcome = self._sync_item(caller, kind, writes, company_id, project_id, item)
                (errors if "errors" in outcome else entities).append(outcome)
            return json_answer({"entities": entities, "errors": errors}, 200, caller.headers)

        return sync

    def _sync_item(
        self,
        caller: Caller,
        kind: Kind,
        writes: Writes,
        company_id: int,
        project_id: int | None,
        item: Any,
    ) -> dict[str, Any]:
        """One item of a sync call: its entity, or the item echoed with its `errors`."""
        if not isinstance(item, dict):
            return {"item": item, "errors": {"base": ["must be an object"]}}
        fields = _clean(item)
        rid, origin = _int_of(item.get("id")), item.get("origin_id")
        target: Resource | None = None
        if item.get("id") is not None:
            target = self._in_scope(self.sim.resources.get((kind.name, rid or -1)),
                                    company_id, project_id)  # fmt: skip
            if target is None:
                return {**item, "errors": {"id": ["Entity with this ID not found"]}}
        elif origin is not None:
            found = self.sim.by_origin(kind, company_id, str(origin))
            target = self._in_scope(found, company_id, project_id)
            if found is not None and target is None:
                # "The same Origin ID may not be used in more than one project within a
                # given company."
                return {**item, "errors": {"origin_id": ["has already been taken"]}}
        if target is not None:
            try:
                self.sim.write_resource(target, fields)
            except ValueError as exc:
                return {**item, "errors": {"origin_id": [str(exc)]}}
            self._announce(caller, "update", target)
            return self._render(target)
        missing = _missing(fields, writes.create_requires)
        if missing:
            return {**item, "errors": missing}
        try:
            made = self.sim.add_resource(kind, company_id, project_id, None, fields)
        except ValueError as exc:
            return {**item, "errors": {"origin_id": [str(exc)]}}
        self._announce(caller, "create", made)
        return self._render(made)

    # -- shared ----------------------------------------------------------------------------

    async def _open(
        self, request: Request, kind: Kind, template: str, body_scope: tuple[str, ...]
    ) -> tuple[Caller, int, int | None, dict[str, Any]] | Response:
        """The JSON body (bounded) and the call's scope, the body's `company_id` /
        `project_id` included where the operation takes them there."""
        raw = await _read(request)
        body: Any = None
        if raw is not None:
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
        named = body if isinstance(body, dict) else {}
        scope = self.rest._scope(
            request,
            kind,
            template,
            company_id=_int_of(named.get("company_id")) if "company_id" in body_scope else None,
            project_id=_int_of(named.get("project_id")) if "project_id" in body_scope else None,
        )
        if isinstance(scope, Response):
            return scope
        caller, company_id, project_id = scope
        if raw is None:
            return errors_answer(413, "request body too large", headers=caller.headers)
        if not isinstance(body, dict):
            return errors_answer(400, "body is not a JSON object", headers=caller.headers)
        for key in body_scope:
            if _int_of(body.get(key)) is None:
                return errors_answer(
                    400, f"param is missing or the value is empty: {key}", headers=caller.headers
                )
        return caller, company_id, project_id, body

    def _held(
        self, kind: Kind, request: Request, company_id: int, project_id: int | None
    ) -> Resource | None:
        found = self.sim.resources.get((kind.name, request.path_params["id"]))
        return self._in_scope(found, company_id, project_id)

    @staticmethod
    def _in_scope(
        resource: Resource | None, company_id: int, project_id: int | None
    ) -> Resource | None:
        if resource is None or resource.company_id != company_id:
            return None
        if project_id is not None and resource.project_id != project_id:
            return None
        return resource

    def _render(self, resource: Resource) -> dict[str, Any]:
        return render(resource, self.sim.company_name(resource.company_id))

    def _announce(self, caller: Caller, event_type: str, resource: Resource) -> None:
        """Count the change and deliver its webhook, marked as this client's doing."""
        sim = self.sim
        sim.writes_applied[(resource.kind.name, event_type)] += 1
        user = self.rest._principal(caller.token)
        change = Change(
            event_type=event_type,
            resource_name=resource.kind.name,
            resource_id=resource.id,
            company_id=resource.company_id,
            project_id=resource.project_id,
            user_id=user.id,
            timestamp=sim.now_dt(),
            source_application_id=caller.token.client_id,
        )
        self.sender.publish([change], sim.event_ids, sim.rng, 0.0)


async def _read(request: Request) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY_BYTES."""
    declared = _int(request.headers.get("content-length"))
    if declared is not None and declared > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _wrapped(
    body: dict[str, Any], wrapper: str | None, caller: Caller
) -> dict[str, Any] | Response:
    fields = body.get(wrapper) if wrapper is not None else body
    if not isinstance(fields, dict) or not fields:
        return errors_answer(
            400, f"param is missing or the value is empty: {wrapper}", headers=caller.headers
        )
    return fields


def _missing(fields: dict[str, Any], required: tuple[str, ...]) -> dict[str, list[str]]:
    return {name: [BLANK] for name in required if fields.get(name) in (None, "", [], {})}


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a write sets (the id is Procore's, never the client's)."""
    return {k: v for k, v in fields.items() if k != "id"}


def _int_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _int(value)
    return None
