"""The REST subset of Procore the service calls (FACTS.md §4, §6, §7).

Every call goes through the same gate, in Procore's order: a valid access token (else 401),
the rate-limit budget (else 429), a `Procore-Company-Id` header (else 400). Company-scoped
calls then need the app installed in the company (else 403 "not connected"), project-scoped
calls a project of that company (else 404) that the principal may see (else 403), and the
resource itself (else 404). Answers to authenticated calls carry the rate-limit headers.
The budget is per client for a user token, and per client and `Procore-Company-Id` for a
service account (Procore counts a service account's calls per company).

Both principals (a service account from client credentials, a user from the authorization
code grant) see the same project permissions; `/companies` lists only the companies where
the app is installed for a service account, and every company for a user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import (
    NO_PROJECT_ACCESS,
    NOT_CONNECTED,
    NOT_FOUND,
    errors_answer,
    json_answer,
    text_answer,
)
from simulator.ratelimit import HOURLY_429_TEXT
from simulator.resources import Kind, Resource, render
from simulator.state import Simulator, User
from simulator.tokens import AccessToken, TokenProblem

Endpoint = Callable[[Request], Awaitable[Response]]

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Caller:
    token: AccessToken
    company_id: int
    headers: dict[str, str]


class RestApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        v10, v11 = "/rest/v1.0", "/rest/v1.1"
        return [
            Route(f"{v10}/me", self.me),
            Route(f"{v10}/companies", self.companies),
            Route(f"{v10}/projects", self.projects),
            Route(f"{v10}/projects/{{project_id:int}}", self.project),
            Route(f"{v10}/projects/{{project_id:int}}/rfis", self._list(Kind.RFIS, "path")),
            Route(
                f"{v10}/projects/{{project_id:int}}/rfis/{{id:int}}", self._show(Kind.RFIS, "path")
            ),
            Route(
                f"{v10}/projects/{{project_id:int}}/submittals", self._list(Kind.SUBMITTALS, "path")
            ),
            Route(
                f"{v10}/projects/{{project_id:int}}/submittals/{{id:int}}",
                self._show(Kind.SUBMITTALS, "path"),
            ),
            Route(f"{v10}/observations/items", self._list(Kind.OBSERVATION_ITEMS, "query")),
            Route(
                f"{v10}/observations/items/{{id:int}}", self._show(Kind.OBSERVATION_ITEMS, "query")
            ),
            Route(f"{v10}/punch_items", self._list(Kind.PUNCH_ITEMS, "query")),
            Route(f"{v10}/punch_items/{{id:int}}", self._show(Kind.PUNCH_ITEMS, "query")),
            Route(
                f"{v10}/companies/{{company_id:int}}/users", self._list(Kind.COMPANY_USERS, None)
            ),
            Route(
                f"{v10}/companies/{{company_id:int}}/users/{{id:int}}",
                self._show(Kind.COMPANY_USERS, None),
            ),
            Route(
                f"{v11}/projects/{{project_id:int}}/vendors",
                self._list(Kind.PROJECT_VENDORS, "path"),
            ),
            Route(
                f"{v11}/projects/{{project_id:int}}/vendors/{{id:int}}",
                self._show(Kind.PROJECT_VENDORS, "path"),
            ),
        ]

    # -- probes ----------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        caller = self._caller(request, company_optional=True)
        if isinstance(caller, Response):
            return caller
        return json_answer(self._principal(caller.token).body(), headers=caller.headers)

    async def companies(self, request: Request) -> Response:
        caller = self._caller(request, company_optional=True)
        if isinstance(caller, Response):
            return caller
        listed = [
            {"id": c.id, "name": c.name, "is_active": c.is_active}
            for c in sorted(self.sim.companies.values(), key=lambda c: c.id)
            if c.installed or not caller.token.service_account
        ]
        return self._page(request, listed, caller.headers)

    async def projects(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        company_id = _int(request.query_params.get("company_id"))
        if company_id is None:
            return errors_answer(400, "company_id is required", headers=caller.headers)
        denied = self._company_denied(company_id, caller)
        if denied is not None:
            return denied
        name = self.sim.company_name(company_id)
        listed = [
            render(p, name)
            for p in self.sim.projects_of(company_id)
            if self.sim.permitted.get(p.id, False)
        ]
        return self._page(request, listed, caller.headers)

    async def project(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        company_id = caller.company_id
        named = _int(request.query_params.get("company_id"))
        if named is not None and named != company_id:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        denied = self._company_denied(company_id, caller)
        if denied is not None:
            return denied
        project = self._project(request.path_params["project_id"], company_id, caller)
        if isinstance(project, Response):
            return project
        return json_answer(
            render(project, self.sim.company_name(company_id)), headers=caller.headers
        )

    # -- resources -------------------------------------------------------------------------

    def _show(self, kind: Kind, project_from: str | None) -> Endpoint:
        async def show(request: Request) -> Response:
            scope = self._scope(request, project_from)
            if isinstance(scope, Response):
                return scope
            caller, company_id, project_id = scope
            resource = self.sim.resources.get((kind, request.path_params["id"]))
            if (
                resource is None
                or resource.company_id != company_id
                or (project_id is not None and resource.project_id != project_id)
            ):
                return errors_answer(404, NOT_FOUND, headers=caller.headers)
            body = render(resource, self.sim.company_name(company_id))
            return json_answer(body, headers=caller.headers)

        return show

    def _list(self, kind: Kind, project_from: str | None) -> Endpoint:
        async def index(request: Request) -> Response:
            scope = self._scope(request, project_from)
            if isinstance(scope, Response):
                return scope
            caller, company_id, project_id = scope
            name = self.sim.company_name(company_id)
            found = self.sim.find(company_id, project_id, (kind,))
            return self._page(request, [render(r, name) for r in found], caller.headers)

        return index

    def _scope(
        self, request: Request, project_from: str | None
    ) -> tuple[Caller, int, int | None] | Response:
        """Authenticate and resolve the company and project a resource call is about."""
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        company_id: int = request.path_params.get("company_id", caller.company_id)
        denied = self._company_denied(company_id, caller)
        if denied is not None:
            return denied
        if project_from is None:
            return caller, company_id, None
        if project_from == "path":
            project_id: int = request.path_params["project_id"]
        else:
            from_query = _int(request.query_params.get("project_id"))
            if from_query is None:
                return errors_answer(400, "project_id is required", headers=caller.headers)
            project_id = from_query
        project = self._project(project_id, company_id, caller)
        if isinstance(project, Response):
            return project
        return caller, company_id, project_id

    # -- the gate --------------------------------------------------------------------------

    def _caller(self, request: Request, *, company_optional: bool = False) -> Caller | Response:
        sim = self.sim
        now = sim.now()
        token = _bearer(request)
        checked = sim.tokens.check(token, now) if token else TokenProblem.INVALID
        if isinstance(checked, TokenProblem):
            return _unauthorized(checked)
        company_id = _int(request.headers.get("procore-company-id"))
        key: tuple[Any, ...] = (
            (checked.client_id, company_id) if checked.service_account else (checked.client_id,)
        )
        verdict = sim.rate_limiter.take(key, now)
        headers = verdict.headers()
        if not verdict.allowed:
            if sim.rate_limiter.settings.retry_after_on_429:
                headers["Retry-After"] = str(verdict.retry_after_s)
            return text_answer(HOURLY_429_TEXT, 429, headers)
        if company_id is None:
            # /me and /companies do not require it of a user token (FACTS.md §4; the OpenAPI:
            # "does not require the 'Procore-Company-Id' header"); a DMSA must send it.
            if company_optional and not checked.service_account:
                return Caller(checked, 0, headers)
            return errors_answer(
                400, "Missing or invalid Procore-Company-Id header.", headers=headers
            )
        return Caller(checked, company_id, headers)

    def _company_denied(self, company_id: int, caller: Caller) -> Response | None:
        company = self.sim.companies.get(company_id)
        if company is not None and company.installed:
            return None
        status = self.sim.switches.not_installed_status
        return errors_answer(status, NOT_CONNECTED, headers=caller.headers)

    def _project(self, project_id: int, company_id: int, caller: Caller) -> Resource | Response:
        project = self.sim.project(project_id)
        if project is None or project.company_id != company_id:
            return errors_answer(404, NOT_FOUND, headers=caller.headers)
        if not self.sim.permitted.get(project_id, False):
            return errors_answer(403, NO_PROJECT_ACCESS, headers=caller.headers)
        return project

    def _principal(self, token: AccessToken) -> User:
        if token.service_account:
            return self.sim.service_account(token.client_id)
        return self.sim.user(token.user_id)

    # -- pagination ------------------------------------------------------------------------

    def _page(self, request: Request, items: Sequence[Any], headers: dict[str, str]) -> Response:
        per_page = min(
            MAX_PER_PAGE, max(1, _int(request.query_params.get("per_page")) or DEFAULT_PER_PAGE)
        )
        page = max(1, _int(request.query_params.get("page")) or 1)
        last = max(1, -(-len(items) // per_page))
        headers = dict(headers)
        headers["Total"] = str(len(items))
        headers["Per-Page"] = str(per_page)
        links = _links(request, page, last, per_page)
        if links:
            headers["Link"] = links
        start = (page - 1) * per_page
        return json_answer(list(items[start : start + per_page]), headers=headers)


def _links(request: Request, page: int, last: int, per_page: int) -> str:
    """RFC 8288 `Link` header as Procore's paginated endpoints send it."""
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels += [("first", 1), ("prev", min(page - 1, last))]
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    base = str(request.url.replace(query=None))
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page")]
    return ", ".join(
        f'<{base}?{urlencode([*kept, ("page", n), ("per_page", per_page)])}>; rel="{rel}"'
        for rel, n in rels
    )


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _unauthorized(problem: TokenProblem) -> Response:
    challenge = f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{problem}"'
    return json_answer({"errors": problem.value}, 401, {"WWW-Authenticate": challenge})


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
