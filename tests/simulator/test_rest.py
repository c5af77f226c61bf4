"""The REST subset and the install/permission model (FACTS.md §4, §6, §7)."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest

from tests.simulator.procore import auth, user_tokens

NOT_CONNECTED = {"errors": ["App is not connected to this company."]}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

SHOW_PATHS = {
    "Projects": "/rest/v1.0/projects/900?company_id=31",
    "RFIs": "/rest/v1.0/projects/900/rfis/5150",
    "Submittals": "/rest/v1.0/projects/900/submittals/8812",
    "Observation Items": "/rest/v1.0/observations/items/7001?project_id=900",
    "Punch Items": "/rest/v1.0/punch_items/6001?project_id=900",
    "Company Users": "/rest/v1.0/companies/31/users/3001",
    "Project Vendors": "/rest/v1.1/projects/900/vendors/4001",
}


@pytest.mark.parametrize(("resource_name", "path"), SHOW_PATHS.items())
async def test_show_endpoints_answer_realistic_bodies(
    api: httpx.AsyncClient, token: str, resource_name: str, path: str
) -> None:
    answer = await api.get(path, headers=auth(token))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body["id"], int)
    assert ISO_UTC.match(body["created_at"])
    assert ISO_UTC.match(body["updated_at"])
    assert len(body) >= 6
    for header in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
        assert header in answer.headers


async def test_me_companies_and_projects(api: httpx.AsyncClient, token: str) -> None:
    me = await api.get("/rest/v1.0/me", headers=auth(token))
    companies = await api.get("/rest/v1.0/companies", headers=auth(token))
    projects = await api.get("/rest/v1.0/projects", params={"company_id": 31}, headers=auth(token))

    assert set(me.json()) == {"id", "login", "name"}
    assert companies.json() == [
        {"id": 31, "name": "Acme Builders", "is_active": True},
        {"id": 32, "name": "Borealis Construction", "is_active": True},
    ]
    assert [p["id"] for p in projects.json()] == [900, 901]  # 902 is not permitted


async def test_company_header_is_required(api: httpx.AsyncClient, token: str) -> None:
    """`tutorials/tutorial_mpz.md`: every call but /me and /companies needs the header."""
    answer = await api.get("/rest/v1.0/projects/900/rfis", headers=auth(token, company_id=None))

    assert answer.status_code == 400
    assert answer.json() == {"errors": ["Missing Procore-Company-Id header!"]}


async def test_install_toggles_403_and_200(api: httpx.AsyncClient, token: str) -> None:
    rfi = "/rest/v1.0/projects/900/rfis/5150"
    assert (await api.get(rfi, headers=auth(token))).status_code == 200

    await api.put("/_sim/companies/31", json={"installed": False})
    paths = [rfi, "/rest/v1.0/projects?company_id=31", "/rest/v1.0/companies/31/users/3001"]
    for path in paths:
        denied = await api.get(path, headers=auth(token))
        assert denied.status_code == 403
        assert denied.json() == NOT_CONNECTED
    listed = await api.get("/rest/v1.0/companies", headers=auth(token))
    assert [c["id"] for c in listed.json()] == [32]
    assert (await api.get("/rest/v1.0/me", headers=auth(token))).status_code == 200

    await api.put("/_sim/companies/31", json={"installed": True})
    assert (await api.get(rfi, headers=auth(token))).status_code == 200


async def test_not_installed_status_switch(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/switches", json={"not_installed_status": 401})

    answer = await api.get("/rest/v1.0/projects?company_id=33", headers=auth(token, 33))

    assert answer.status_code == 401
    assert answer.json() == NOT_CONNECTED


async def test_project_permission_403_while_company_calls_succeed(
    api: httpx.AsyncClient, token: str
) -> None:
    await api.put("/_sim/companies/31/projects/900", json={"permitted": False})

    rfi = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    project = await api.get("/rest/v1.0/projects/900?company_id=31", headers=auth(token))
    listed = await api.get("/rest/v1.0/projects?company_id=31", headers=auth(token))
    user = await api.get("/rest/v1.0/companies/31/users/3001", headers=auth(token))

    assert rfi.status_code == project.status_code == 403
    assert rfi.json() == {"errors": ["You do not have permission to access this project."]}
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [901]
    assert user.status_code == 200


async def test_a_tool_refused_company_wide_answers_403_in_every_project_and_nothing_else(
    api: httpx.AsyncClient, token: str
) -> None:
    """FACTS.md §6, cause 2: the permission template lacks one tool (resource type)."""
    made = await api.put("/_sim/companies/31", json={"denied_tools": ["Submittals"]})
    assert made.json()["denied_tools"] == ["Submittals"]

    submittal = await api.get("/rest/v1.0/projects/900/submittals/8812", headers=auth(token))
    rfi = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    project = await api.get("/rest/v1.0/projects/900?company_id=31", headers=auth(token))

    assert submittal.status_code == 403
    assert submittal.json() == {"errors": ["You do not have permission to perform this action."]}
    assert rfi.status_code == project.status_code == 200


async def test_a_tool_disabled_in_one_project_answers_403_there_only(
    api: httpx.AsyncClient, token: str
) -> None:
    """FACTS.md §6, cause 3: one tool in one project."""
    await api.put("/_sim/companies/31/projects/900", json={"disabled_tools": ["RFIs"]})

    rfi = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))
    submittal = await api.get("/rest/v1.0/projects/900/submittals/8812", headers=auth(token))

    assert rfi.status_code == 403
    assert rfi.json() == {"errors": ["This tool is not enabled in this project."]}
    assert submittal.status_code == 200


async def test_unknown_tools_are_refused_by_the_control_api(api: httpx.AsyncClient) -> None:
    company = await api.put("/_sim/companies/31", json={"denied_tools": ["Nope"]})
    project = await api.put("/_sim/companies/31/projects/900", json={"disabled_tools": ["X"]})

    assert company.status_code == project.status_code == 422
    listed = await api.get("/_sim/companies")
    assert all(c["denied_tools"] == [] for c in listed.json())


async def test_project_must_belong_to_the_header_company(
    api: httpx.AsyncClient, token: str
) -> None:
    answer = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token, 32))

    assert answer.status_code == 404


async def test_resource_of_another_project_is_404(api: httpx.AsyncClient, token: str) -> None:
    answer = await api.get("/rest/v1.0/projects/901/rfis/5150", headers=auth(token))

    assert answer.status_code == 404


async def test_deleted_resource_is_404(api: httpx.AsyncClient, token: str) -> None:
    await api.post(
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 900,
            "resource_name": "RFIs",
            "resource_id": 5150,
            "event_type": "delete",
        },
    )

    answer = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))

    assert answer.status_code == 404
    assert answer.json() == {"errors": ["Record not found."]}


async def test_update_bumps_updated_at_and_changes_a_field(
    api: httpx.AsyncClient, token: str
) -> None:
    path = "/rest/v1.0/projects/900/submittals/8812"
    before = (await api.get(path, headers=auth(token))).json()

    await api.post(
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 900,
            "resource_name": "Submittals",
            "resource_id": 8812,
            "count": 3,
        },
    )
    after = (await api.get(path, headers=auth(token))).json()

    assert after["title"] != before["title"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(
        before["updated_at"]
    )
    assert after["created_at"] == before["created_at"]


async def test_create_makes_a_new_resource(api: httpx.AsyncClient, token: str) -> None:
    created = await api.post(
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 901,
            "resource_name": "Punch Items",
            "event_type": "create",
            "fields": {"name": "Loose handrail"},
        },
    )
    (new_id,) = created.json()["resource_ids"]

    answer = await api.get(f"/rest/v1.0/punch_items/{new_id}?project_id=901", headers=auth(token))

    assert answer.status_code == 200
    assert answer.json()["name"] == "Loose handrail"


async def test_user_token_sees_every_company_but_still_needs_the_install(
    api: httpx.AsyncClient,
) -> None:
    tokens = await user_tokens(api)
    headers = auth(tokens["access_token"], 33)

    companies = await api.get("/rest/v1.0/companies", headers=headers)
    projects = await api.get("/rest/v1.0/projects?company_id=33", headers=headers)

    assert [c["id"] for c in companies.json()] == [31, 32, 33]
    assert projects.status_code == 403


async def test_pagination_headers(api: httpx.AsyncClient, token: str) -> None:
    await api.post(
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 900,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": 3,
        },
    )  # five RFIs in project 900 now
    base = f"{str(api.base_url).rstrip('/')}/rest/v1.0/projects/900/rfis"

    first = await api.get("/rest/v1.0/projects/900/rfis?per_page=2", headers=auth(token))
    middle = await api.get("/rest/v1.0/projects/900/rfis?per_page=2&page=2", headers=auth(token))
    last = await api.get("/rest/v1.0/projects/900/rfis?per_page=2&page=3", headers=auth(token))

    assert first.headers["total"] == "5"
    assert first.headers["per-page"] == "2"
    assert len(first.json()) == 2
    assert first.headers["link"] == (
        f'<{base}?page=2&per_page=2>; rel="next", <{base}?page=3&per_page=2>; rel="last"'
    )
    assert middle.headers["link"] == (
        f'<{base}?page=1&per_page=2>; rel="first", <{base}?page=1&per_page=2>; rel="prev", '
        f'<{base}?page=3&per_page=2>; rel="next", <{base}?page=3&per_page=2>; rel="last"'
    )
    assert last.headers["link"] == (
        f'<{base}?page=1&per_page=2>; rel="first", <{base}?page=2&per_page=2>; rel="prev"'
    )
    assert len(last.json()) == 1
    ids = [r["id"] for page in (first, middle, last) for r in page.json()]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


@pytest.mark.parametrize(
    "path",
    [
        "/rest/v1.0/projects/900/submittals",
        "/rest/v1.0/observations/items?project_id=900",
        "/rest/v1.0/punch_items?project_id=900",
        "/rest/v1.0/companies/31/users",
        "/rest/v1.1/projects/900/vendors",
    ],
)
async def test_list_endpoints(api: httpx.AsyncClient, token: str, path: str) -> None:
    answer = await api.get(path, headers=auth(token))

    assert answer.status_code == 200
    assert answer.headers["total"] == str(len(answer.json())) == "1"


async def test_mirror_view_of_resources(api: httpx.AsyncClient, token: str) -> None:
    listed = await api.get("/_sim/resources", params={"company_id": 31, "resource_name": "RFIs"})
    shown = await api.get("/rest/v1.0/projects/900/rfis/5150", headers=auth(token))

    by_id = {r["body"]["id"]: r for r in listed.json()}
    assert sorted(by_id) == [5150, 5151, 5152, 5180]
    assert by_id[5150]["body"] == shown.json()
    assert by_id[5150]["project_id"] == 900
