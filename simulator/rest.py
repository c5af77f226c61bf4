"""The REST subset of Procore the service calls (FACTS.md §4, §6, §7).

Every call goes through the same gate, in Procore's order: a valid access token (else 401),
the rate-limit budget (else 429), a `Procore-Company-Id` header (else 400 "Missing
Procore-Company-Id header!", `tutorials/tutorial_mpz.md`; a user token needs none on `/me` and
`/companies`, a service account does, see `Switches.company_header`). Company-scoped
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
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.answers import (
    NO_PROJECT_ACCESS,
    NO_TOOL_PERMISSION,
    NOT_CONNECTED,
    NOT_FOUND,
    TOOL_DISABLED,
    errors_answer,
    json_answer,
    text_answer,
)
from simulator.ratelimit import HOURLY_429_TEXT
from simulator.resources import KINDS, KINDS_LIST, Kind, Resource, render
from simulator.state import Simulator, User
from simulator.tokens import AccessToken, TokenProblem

Endpoint = Callable[[Request], Awaitable[Response]]

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000


MISSING_COMPANY_HEADER = "Missing Procore-Company-Id header!"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated call about one company."""

    token: AccessToken
    company_id: int
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated call that may name no company (`/me`, `/companies`)."""

    token: AccessToken
    company_id: int | None
    headers: dict[str, str]


class RestApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """`/me`, `/companies`, a company's projects, and every route of the world table."""
        routes = [
            Route("/rest/v1.0/me", self.me),
            Route("/rest/v1.0/companies", self.companies),
            Route("/rest/v1.0/companies/{company_id:int}/projects", self.company_projects),
        ]
        routes += [
            Route("/rest/v1.0/folders", self.root_folder),
            Route("/rest/v1.0/projects/{project_id:int}/documents", self.documents),
            Route(
                "/rest/v1.0/projects/{project_id:int}/submittals/filter_options/status_id",
                self.submittal_statuses,
            ),
        ]
        for kind in KINDS_LIST:
            routes += [Route(_route_path(t), self._show(kind, t)) for t in kind.shows]
            routes += [Route(_route_path(t), self._list(kind, t, False)) for t in kind.lists]
            routes += [
                Route(_route_path(t), self._list(kind, t, True)) for t in kind.inactive_lists
            ]
        return routes

    # -- probes ----------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        caller = self._unscoped_caller(request, params_need_header=True)
        if isinstance(caller, Response):
            return caller
        return json_answer(self._principal(caller.token).body(), headers=caller.headers)

    async def companies(self, request: Request) -> Response:
        caller = self._unscoped_caller(request)
        if isinstance(caller, Response):
            return caller
        listed = [
            {"id": c.id, "name": c.name, "is_active": c.is_active}
            for c in sorted(self.sim.companies.values(), key=lambda c: c.id)
            if c.installed or not caller.token.service_account
        ]
        return self._page(request, listed, caller.headers)

    async def company_projects(self, request: Request) -> Response:
        """`RestV10CompaniesCompanyIdProjectsGet` "List company's projects": the permitted
        projects in a shape of its own, no paging parameters."""
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        company_id: int = request.path_params["company_id"]
        denied = self._company_denied(company_id, caller)
        if denied is not None:
            return denied
        projects: list[dict[str, Any]] = [
            {
                "id": p.id,
                "name": p.fields.get("name"),
                "address": {
                    "street": p.fields.get("address"),
                    "city": p.fields.get("city"),
                    "state_code": p.fields.get("state_code"),
                    "zip": p.fields.get("zip"),
                    "country_code": p.fields.get("country_code"),
                },
                "stage_name": p.fields.get("stage"),
                "status_name": "Active" if p.active else "Inactive",
                "type_name": None,
                "open_items": [],
            }
            for p in self.sim.projects_of(company_id)
            if self.sim.permitted.get(p.id, False) and p.active
        ]
        return json_answer(projects, headers=caller.headers)

    # -- documents -------------------------------------------------------------------------

    async def root_folder(self, request: Request) -> Response:
        """`RestV10FoldersGet` "List project folders and files": the root folder, an object,
        with the folders and files at its top level."""
        scope = self._scope(request, KINDS["Project Folders"], "?project_id")
        if isinstance(scope, Response):
            return scope
        caller, company_id, project_id = scope
        top = [
            r for r in self._documents(company_id, project_id) if r.fields.get("parent_id") is None
        ]
        name = self.sim.company_name(company_id)
        root = {
            "id": project_id,
            "name": "Documents",
            "parent_id": None,
            "private": False,
            "is_tracked": False,
            "name_with_path": "Documents",
            "is_deleted": False,
            "is_recycle_bin": False,
            "read_only": False,
            "folders": [render(r, name) for r in top if r.kind.name == "Project Folders"],
            "files": [render(r, name) for r in top if r.kind.name == "Project Files"],
        }
        return json_answer(root, headers=caller.headers)

    async def documents(self, request: Request) -> Response:
        """`RestV10ProjectsProjectIdDocumentsGet` "Project Folder and File index": every
        folder and file, paginated, filtered by `filters[document_type]`, `[folder_id]`,
        `[is_in_recycle_bin]` and `[private]` (booleans read without case)."""
        scope = self._scope(request, KINDS["Project Folders"], template="")
        if isinstance(scope, Response):
            return scope
        caller, company_id, project_id = scope
        query = request.query_params
        found = self._documents(company_id, project_id)
        wanted_type = query.get("filters[document_type]")
        if wanted_type is not None:
            found = [r for r in found if r.fields.get("document_type") == wanted_type]
        folder = _int(query.get("filters[folder_id]"))
        if folder is not None:
            found = [r for r in found if r.fields.get("parent_id") == folder]
        for name, field_name in (("is_in_recycle_bin", "is_deleted"), ("private", "private")):
            flag = query.get(f"filters[{name}]")
            if flag is not None:
                found = [
                    r for r in found if bool(r.fields.get(field_name)) == (flag.lower() == "true")
                ]
        company = self.sim.company_name(company_id)
        return self._page(request, [render(r, company) for r in found], caller.headers)

    def _documents(self, company_id: int, project_id: int | None) -> list[Resource]:
        kinds = (KINDS["Project Folders"], KINDS["Project Files"])
        return self.sim.find(company_id, project_id, kinds)

    async def submittal_statuses(self, request: Request) -> Response:
        """`RestV10ProjectsProjectIdSubmittalsFilterOptionsStatusIdGet`: `[{key, value}]`."""
        scope = self._scope(request, KINDS["Submittals"], template="")
        if isinstance(scope, Response):
            return scope
        caller, _, _ = scope
        statuses = [{"key": 1, "value": "Open"}, {"key": 2, "value": "Closed"}]
        return self._page(request, statuses, caller.headers)

    # -- resources -------------------------------------------------------------------------

    def _show(self, kind: Kind, template: str) -> Endpoint:
        async def show(request: Request) -> Response:
            scope = self._scope(request, kind, template)
            if isinstance(scope, Response):
                return scope
            caller, company_id, project_id = scope
            resource = self.sim.resources.get((kind.name, request.path_params["id"]))
            if (
                resource is None
                or resource.company_id != company_id
                or (project_id is not None and resource.project_id != project_id)
            ):
                return errors_answer(404, NOT_FOUND, headers=caller.headers)
            if kind.name == "Projects" and not self.sim.permitted.get(resource.id, False):
                return errors_answer(403, NO_PROJECT_ACCESS, headers=caller.headers)
            body = render(resource, self.sim.company_name(company_id))
            return json_answer(body, headers=caller.headers)

        return show

    def _list(self, kind: Kind, template: str, inactive: bool) -> Endpoint:
        async def index(request: Request) -> Response:
            scope = self._scope(request, kind, template)
            if isinstance(scope, Response):
                return scope
            caller, company_id, project_id = scope
            found = listed(self.sim, kind, company_id, project_id, request, inactive=inactive)
            if isinstance(found, str):
                return errors_answer(400, found, headers=caller.headers)
            name = self.sim.company_name(company_id)
            bodies = [render(r, name) for r in found]
            if not kind.paginated:
                return json_answer(bodies, headers=caller.headers)
            return self._page(request, bodies, caller.headers)

        return index

    def _scope(
        self,
        request: Request,
        kind: Kind,
        template: str,
        *,
        company_id: int | None = None,
        project_id: int | None = None,
    ) -> tuple[Caller, int, int | None] | Response:
        """Authenticate and resolve the company and project a resource call is about: from
        the path, else the query, else what the body names (`company_id`, `project_id`
        given by a write), else (the company) the `Procore-Company-Id` header."""
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        required = _required_query(template)
        query = request.query_params
        for name in required:
            if _int(query.get(name)) is None:
                return errors_answer(400, f"{name} is required", headers=caller.headers)
        company: int = (
            request.path_params.get("company_id")
            or _int(query.get("company_id"))
            or company_id
            or caller.company_id
        )
        denied = self._company_denied(company, caller)
        if denied is not None:
            return denied
        if kind.name in self.sim.companies[company].denied_tools:
            return errors_answer(403, NO_TOOL_PERMISSION, headers=caller.headers)
        if kind.company_level:
            return caller, company, None
        project_id = (
            request.path_params.get("project_id") or _int(query.get("project_id")) or project_id
        )
        if project_id is None:
            return errors_answer(400, "project_id is required", headers=caller.headers)
        project = self._project(project_id, company, caller)
        if isinstance(project, Response):
            return project
        if kind.name in self.sim.disabled_tools.get(project_id, ()):
            return errors_answer(403, TOOL_DISABLED, headers=caller.headers)
        return caller, company, project_id

    # -- the gate --------------------------------------------------------------------------

    def _caller(self, request: Request) -> Caller | Response:
        """A call about one company: `Procore-Company-Id` is required."""
        call = self._authenticate(request)
        if isinstance(call, Response):
            return call
        if call.company_id is None:
            return errors_answer(400, MISSING_COMPANY_HEADER, headers=call.headers)
        return Caller(call.token, call.company_id, call.headers)

    def _unscoped_caller(
        self, request: Request, *, params_need_header: bool = False
    ) -> Principal | Response:
        """`/me` and `/companies`: "This endpoint does not require the 'Procore-Company-Id'
        header" (OpenAPI RestV10MeGet, RestV10CompaniesGet; `tutorials/tutorial_mpz.md`), "unless
        a company_id or project_id parameter is also included" (RestV10MeGet). "The exception
        to this rule is when you are using Service Accounts": a DMSA with Multiple Procore
        Regions "must include" it (`oauth/oauth_client_credentials.md`; switch
        `multi_region`), unless `company_header` is "inferred"."""
        call = self._authenticate(request)
        if isinstance(call, Response) or call.company_id is not None:
            return call
        names_scope = params_need_header and any(
            k in request.query_params for k in ("company_id", "project_id")
        )
        switches = self.sim.switches
        exempt = (
            not call.token.service_account
            or not switches.multi_region
            or switches.company_header == "inferred"
        )
        if names_scope or not exempt:
            return errors_answer(400, MISSING_COMPANY_HEADER, headers=call.headers)
        return call

    def _authenticate(self, request: Request) -> Principal | Response:
        """The access token, then the rate-limit budget (per client for a user token, per
        client and company for a service account). An unreadable `Procore-Company-Id` is a
        400 whatever the path."""
        sim = self.sim
        now = sim.now()
        token = _bearer(request)
        checked = sim.tokens.check(token, now) if token else TokenProblem.INVALID
        if isinstance(checked, TokenProblem):
            return _unauthorized(checked)
        raw = request.headers.get("procore-company-id")
        company_id = _int(raw)
        if raw is None and sim.switches.company_header == "inferred":
            company_id = self._company_named_by(request)
        key: tuple[Any, ...] = (
            (checked.client_id, company_id) if checked.service_account else (checked.client_id,)
        )
        verdict = sim.rate_limiter.take(key, now)
        headers = verdict.headers()
        if not verdict.allowed:
            if sim.rate_limiter.settings.retry_after_on_429:
                headers["Retry-After"] = str(verdict.retry_after_s)
            return text_answer(HOURLY_429_TEXT, 429, headers)
        if raw is not None and company_id is None:
            return errors_answer(400, MISSING_COMPANY_HEADER, headers=headers)
        return Principal(checked, company_id, headers)

    def _company_named_by(self, request: Request) -> int | None:
        """The company a call names without the header: `/companies/{id}` in its path, its
        `company_id` parameter, or the company owning the project it names."""
        path, query = request.path_params, request.query_params
        named = path.get("company_id") or _int(query.get("company_id"))
        if named is not None:
            return int(named)
        project_id = path.get("project_id") or _int(query.get("project_id"))
        project = None if project_id is None else self.sim.project(int(project_id))
        return None if project is None else project.company_id

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


def listed(
    sim: Simulator,
    kind: Kind,
    company_id: int,
    project_id: int | None,
    request: Request,
    *,
    inactive: bool,
) -> list[Resource] | str:
    """What a list route answers, with Procore's default filters (see `resources`); a
    string is a refusal (400)."""
    query = request.query_params
    found = sim.find(company_id, project_id, (kind,))
    if kind.name == "Projects":
        found = [p for p in found if sim.permitted.get(p.id, False)]
    if kind.activity is not None:
        wanted = {"active"} if not inactive else {"inactive"}
        if kind.status_filter:
            by_status = (query.get("filters[by_status]") or "Active").lower()
            if by_status not in ("active", "inactive", "all"):
                return "filters[by_status] must be All, Active or Inactive"
            wanted = {"active", "inactive"} if by_status == "all" else {by_status}
        found = [r for r in found if ("active" if r.active else "inactive") in wanted]
    if kind.dated:
        days = _days(query, sim.now_dt().date())
        if isinstance(days, str):
            return days
        found = [r for r in found if r.day is not None and days[0] <= r.day <= days[1]]
    if kind.approval:
        status = (query.get("filters[status]") or "approved").lower()
        if status not in ("approved", "pending", "all"):
            return "filters[status] must be approved, pending or all"
        if status != "all":
            found = [r for r in found if r.fields.get("status", "approved") == status]
    ids = {_int(v) for v in query.getlist("filters[id][]") + query.getlist("filters[id]")}
    if ids:
        found = [r for r in found if r.id in ids]
    # `filters[origin_id]` (RestV10VendorsGet, RestV10ProjectsGet, RestV10CostCodesGet, ...)
    # and `filters[number]` (RestV10ProjectsProjectIdRfisGet): records holding that value.
    for name in ("origin_id", "number"):
        value = query.get(f"filters[{name}]")
        if value is not None:
            found = [r for r in found if str(r.fields.get(name)) == value]
    return found


def _days(query: Any, today: date) -> tuple[str, str] | str:
    """A dated list's day range: `log_date`, or `start_date` and `end_date`, else today."""
    try:
        if query.get("log_date"):
            day = date.fromisoformat(query["log_date"]).isoformat()
            return day, day
        if query.get("start_date") or query.get("end_date"):
            start = date.fromisoformat(query["start_date"]).isoformat()
            end = date.fromisoformat(query["end_date"]).isoformat()
            return start, end
    except (KeyError, ValueError):
        return "log_date, start_date and end_date are dates (YYYY-MM-DD), start and end together"
    return today.isoformat(), today.isoformat()


def _route_path(template: str) -> str:
    """`/rest/v1.0/projects/{project_id}/rfis/{id}?x` → the Starlette path, ids as ints."""
    path = template.split("?", 1)[0]
    for name in ("id", "company_id", "project_id"):
        path = path.replace(f"{{{name}}}", f"{{{name}:int}}")
    return path


def _required_query(template: str) -> list[str]:
    _, _, query = template.partition("?")
    return [name for name in query.split("&") if name]


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
