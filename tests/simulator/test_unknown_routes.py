"""Unknown routes and methods answer JSON errors (FACTS.md §4; `api_essentials/
error_reference.md`: 4xx bodies carry `errors` or `message`). The JS SDK parses every body as
JSON, so a text/plain 404 makes it throw instead of rejecting with the status."""

from __future__ import annotations

import httpx
import pytest

from tests.simulator.procore import auth, calls


@pytest.mark.parametrize(
    "path", ["/rest/v1.0/no/such/route", "/rest/v9.9/projects", "/oauth/nothing", "/elsewhere"]
)
async def test_unknown_route_answers_json_404(
    api: httpx.AsyncClient, token: str, path: str
) -> None:
    answer = await api.get(path, headers=auth(token))

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"errors": "Not Found"}


async def test_wrong_method_answers_json_405_with_allow(api: httpx.AsyncClient, token: str) -> None:
    answer = await api.delete("/oauth/token", headers=auth(token))

    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"errors": "Method Not Allowed"}
    assert answer.headers["allow"] == "POST"


async def test_unknown_route_is_counted_as_a_404(api: httpx.AsyncClient, token: str) -> None:
    await api.delete("/_sim/calls")

    await api.get("/rest/v1.0/companies/31/no_such_tool", headers=auth(token))

    counted = await calls(api, company_id=31)
    assert counted["by_status"] == {"404": 1}
