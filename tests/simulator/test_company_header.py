"""Which calls need `Procore-Company-Id` (FACTS.md §4), and the switch for SDKs that omit it."""

from __future__ import annotations

import httpx
import pytest

from tests.simulator.procore import auth, client_credentials_token, user_tokens

MISSING = {"errors": ["Missing Procore-Company-Id header!"]}


@pytest.fixture
async def user_token(api: httpx.AsyncClient) -> str:
    """An authorization-code (user) access token."""
    access: str = (await user_tokens(api))["access_token"]
    return access


@pytest.mark.parametrize("path", ["/rest/v1.0/me", "/rest/v1.0/companies"])
async def test_user_token_needs_no_company_header_on_me_and_companies(
    api: httpx.AsyncClient, user_token: str, path: str
) -> None:
    """OpenAPI RestV10MeGet and RestV10CompaniesGet: "This endpoint does not require the
    'Procore-Company-Id' header"; `tutorials/tutorial_mpz.md` lists both as the exceptions."""
    answer = await api.get(path, headers=auth(user_token, company_id=None))

    assert answer.status_code == 200, answer.text
    assert "x-rate-limit-remaining" in answer.headers


async def test_user_token_lists_every_company_without_the_header(
    api: httpx.AsyncClient, user_token: str
) -> None:
    answer = await api.get("/rest/v1.0/companies", headers=auth(user_token, company_id=None))

    assert [c["id"] for c in answer.json()] == [31, 32, 33]


@pytest.mark.parametrize("query", ["company_id=31", "project_id=900"])
async def test_me_naming_a_company_or_project_needs_the_header(
    api: httpx.AsyncClient, user_token: str, query: str
) -> None:
    """RestV10MeGet: not required "unless a company_id or project_id parameter is also
    included"."""
    answer = await api.get(f"/rest/v1.0/me?{query}", headers=auth(user_token, company_id=None))

    assert answer.status_code == 400
    assert answer.json() == MISSING


async def test_companies_needs_no_header_whatever_its_parameters(
    api: httpx.AsyncClient, user_token: str
) -> None:
    """RestV10CompaniesGet states no exception (unlike RestV10MeGet)."""
    answer = await api.get(
        "/rest/v1.0/companies?company_id=31&per_page=1", headers=auth(user_token, None)
    )

    assert answer.status_code == 200
    assert [c["id"] for c in answer.json()] == [31]


async def test_user_token_needs_the_header_everywhere_else(
    api: httpx.AsyncClient, user_token: str
) -> None:
    """`tutorials/tutorial_mpz.md`: "even though an endpoint might require the company_id as a
    path or query parameter, MPR still requires you to include the Procore-Company-Id field";
    the error text is the documented one."""
    for path in ("/rest/v1.0/projects?company_id=31", "/rest/v1.0/companies/31/users"):
        answer = await api.get(path, headers=auth(user_token, company_id=None))
        assert answer.status_code == 400, path
        assert answer.json() == MISSING


@pytest.mark.parametrize("path", ["/rest/v1.0/me", "/rest/v1.0/companies"])
async def test_a_multi_region_service_account_must_send_the_header_on_me_and_companies(
    api: httpx.AsyncClient, token: str, path: str
) -> None:
    """`oauth/oauth_client_credentials.md`, "Using Developer Managed Service Accounts with
    MPR": "If you intend to use DMSAs with Multiple Procore Regions (MPR), you must include
    the Procore-Company-Id request header when making calls to the /rest/v1.0/me or
    /rest/v1.0/companies endpoints". In one region (the default) it may leave it out; the
    `multi_region` switch asks for it."""
    one_region = await api.get(path, headers=auth(token, company_id=None))
    assert one_region.status_code == 200, one_region.text

    (await api.put("/_sim/switches", json={"multi_region": True})).raise_for_status()
    without = await api.get(path, headers=auth(token, company_id=None))
    with_header = await api.get(path, headers=auth(token))

    assert without.status_code == 400
    assert without.json() == MISSING
    assert with_header.status_code == 200


async def test_unreadable_company_header_is_refused_even_where_optional(
    api: httpx.AsyncClient, user_token: str
) -> None:
    headers = {"Authorization": f"Bearer {user_token}", "Procore-Company-Id": "thirty-one"}

    answer = await api.get("/rest/v1.0/me", headers=headers)

    assert answer.status_code == 400
    assert answer.json() == MISSING


async def test_missing_header_is_checked_after_the_token(api: httpx.AsyncClient) -> None:
    answer = await api.get("/rest/v1.0/companies/31/users", headers=auth("bogus", None))

    assert answer.status_code == 401


# -- the "inferred" switch: what pyprocore and ProPyCore send ------------------------------


async def test_inferred_switch_takes_the_company_from_path_query_or_project(
    api: httpx.AsyncClient, token: str
) -> None:
    """pyprocore omits the header on companies, projects, RFIs and submittals, ProPyCore on
    companies and projects; "inferred" serves them for a run, never by default."""
    await api.put("/_sim/switches", json={"multi_region": True})
    paths = [
        "/rest/v1.0/companies",
        "/rest/v1.0/me",
        "/rest/v1.0/companies/31/users",
        "/rest/v1.0/projects?company_id=31",
        "/rest/v1.0/projects/900/rfis",
        "/rest/v1.0/punch_items?project_id=900",
    ]
    for path in paths:
        assert (await api.get(path, headers=auth(token, None))).status_code == 400, path

    switched = await api.put("/_sim/switches", json={"company_header": "inferred"})

    assert switched.status_code == 200
    assert switched.json()["company_header"] == "inferred"
    for path in paths:
        answer = await api.get(path, headers=auth(token, None))
        assert answer.status_code == 200, (path, answer.text)


async def test_inferred_company_is_the_one_checked(api: httpx.AsyncClient, token: str) -> None:
    """The inferred company is the call's company: not installed there → 403, a project of
    another company → 404, a project nobody knows → no company → 400."""
    await api.put("/_sim/switches", json={"company_header": "inferred"})

    uninstalled = await api.get("/rest/v1.0/projects?company_id=33", headers=auth(token, None))
    unknown = await api.get("/rest/v1.0/projects/999999/rfis", headers=auth(token, None))

    assert uninstalled.status_code == 403
    assert uninstalled.json() == {"errors": ["App is not connected to this company."]}
    assert unknown.status_code == 400
    assert unknown.json() == MISSING


async def test_company_header_switch_refuses_unknown_values(api: httpx.AsyncClient) -> None:
    answer = await api.put("/_sim/switches", json={"company_header": "sometimes"})

    assert answer.status_code == 422
    await api.post("/_sim/reset")
    current = await api.put("/_sim/switches", json={})
    assert current.json()["company_header"] == "required"


async def test_reset_restores_the_documented_reading(api: httpx.AsyncClient) -> None:
    await api.put("/_sim/switches", json={"company_header": "inferred", "multi_region": True})

    await api.post("/_sim/reset")

    token = await client_credentials_token(api)
    answer = await api.get("/rest/v1.0/companies/31/users", headers=auth(token, None))
    assert answer.status_code == 400
    current = (await api.put("/_sim/switches", json={})).json()
    assert current["company_header"] == "required"
    assert current["multi_region"] is False
