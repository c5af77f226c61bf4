"""Hostile input with admin credentials is refused with 4xx naming the field, never a 500:
odd cursors, NUL bytes, out-of-range moments and ids, NaN, text where numbers belong."""

from __future__ import annotations

import base64

import httpx
import pytest
from sqlalchemy import text

from app.runtime import Runtime
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


GET_REFUSALS = [
    ("/admin/events", {"cursor": "--5"}),
    ("/admin/events", {"cursor": b64("events-desc:--5")}),
    ("/admin/events", {"cursor": "events." + "9" * 30}),
    ("/admin/events", {"cursor": "events.-5"}),
    ("/admin/events", {"cursor": "gates.5"}),
    ("/admin/gates", {"cursor": "gates." + "1" * 19}),
    ("/admin/actions", {"cursor": "actions.1\x00"}),
    ("/admin/resources", {"since": "resources.99999999999999999999"}),
    ("/admin/resources", {"resource_name": "RFIs\x00"}),
    ("/admin/events", {"resource_name": "\x00"}),
    ("/admin/events", {"resource_name": "Not A Resource"}),
    ("/admin/events", {"received_since": "0000-01-01T00:00:00Z"}),
    ("/admin/events", {"received_until": "0.5"}),
    ("/admin/events", {"received_until": "NaN"}),
    ("/admin/events", {"project_id": str(2**63)}),
    ("/admin/events", {"company_id": "9" * 5000}),
    ("/admin/gates", {"company_id": "NaN"}),
    ("/admin/events", {"limit": "1e400"}),
]


@pytest.mark.parametrize(("path", "params"), GET_REFUSALS)
async def test_hostile_query_parameters_are_refused_with_422(
    client: httpx.AsyncClient, db: Runtime, path: str, params: dict[str, str]
) -> None:
    answer = await client.get(path, params=params, headers=ADMIN)
    assert answer.status_code == 422, (params, answer.text)
    [name] = params
    assert any(name in error["loc"] for error in answer.json()["detail"]), answer.text


POST_REFUSALS = [
    ("/admin/events/replay", {"resource_name": "RFIs\x00"}),
    ("/admin/events/replay", {"received_since": "10000-01-01T00:00:00Z"}),
    ("/admin/events/replay", {"received_since": "0000-12-31T00:00:00Z"}),
    ("/admin/events/replay", {"received_since": 1.5}),
    ("/admin/events/replay", {"company_id": 2**63}),
    ("/admin/events/replay", {"company_id": "31"}),
    ("/admin/events/replay", {"force": 0}),
    ("/admin/events/replay", {"status": ["queued"]}),
    ("/admin/events/replay", {"max_events": 2**64}),
    ("/admin/companies/31/resync", {"project_id": 2**63}),
    ("/admin/companies/31/resync", {"resource_name": "0"}),
    ("/admin/gates/1/park", {"reason": "why\x00"}),
    ("/admin/connect-links", {"company_id": 1.5}),
    ("/admin/setup-links", {"company_id": True}),
]


@pytest.mark.parametrize(("path", "body"), POST_REFUSALS)
async def test_hostile_bodies_are_refused_with_422(
    client: httpx.AsyncClient, db: Runtime, path: str, body: dict[str, object]
) -> None:
    answer = await client.post(path, json=body, headers=ADMIN)
    assert answer.status_code == 422, (body, answer.text)
    async with db.sessions() as session:
        actions = (await session.execute(text("SELECT count(*) FROM admin_actions"))).scalar()
    assert actions == 0


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/admin/gates/1/park", b'{"reason": NaN}'),
        ("/admin/connect-links", b'{"company_id": NaN}'),
        ("/admin/connect-links", b'{"company_id": Infinity}'),
        ("/admin/events/replay", b'{"max_events": -Infinity}'),
        ("/admin/gates/1/park", b"\xff\xfe"),
        ("/admin/gates/1/park", b'{"reason": "x"'),
    ],
)
async def test_undecodable_bodies_are_refused_with_4xx(
    client: httpx.AsyncClient, db: Runtime, path: str, raw: bytes
) -> None:
    answer = await client.post(
        path, content=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert answer.status_code in (400, 422), (path, raw, answer.status_code)


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-23:00",  # after the last moment the database holds, once in UTC
        "0001-01-01T00:00:00+14:00",  # before the first
        "0001-01-01T00:00:00Z",  # the driver's -infinity
        "9999-12-31T23:59:59.999999Z",  # and its infinity
    ],
)
async def test_extreme_moments_are_valid_bounds(
    client: httpx.AsyncClient, db: Runtime, moment: str
) -> None:
    for name in ("received_since", "received_until"):
        answer = await client.get("/admin/events", params={name: moment}, headers=ADMIN)
        assert answer.status_code == 200, (name, moment, answer.text)
    answer = await client.post(
        "/admin/events/replay", json={"received_since": moment}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text


async def test_the_embedded_page_takes_any_project_id(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    for project in (str(2**63), "9" * 5000, "\x00", "-1"):
        answer = await client.get(
            "/embedded", params={"company_id": "31", "project_id": project, "key": "x"}
        )
        assert answer.status_code == 403


async def test_cursors_continue_in_either_order(client: httpx.AsyncClient, db: Runtime) -> None:
    # A cursor is a position: from one, either order continues (no rows skipped).
    answer = await client.get("/admin/events", params={"cursor": "events.5"}, headers=ADMIN)
    assert answer.status_code == 200
    answer = await client.get(
        "/admin/events", params={"cursor": "events.5", "order": "asc"}, headers=ADMIN
    )
    assert answer.status_code == 200


async def test_method_not_allowed_names_every_documented_method(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    # Several routes share a path: the answer names all of their methods, and only theirs.
    answer = await client.request("OPTIONS", "/admin/destinations", headers=ADMIN)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    answer = await client.request("PUT", "/admin/events/replay", headers=ADMIN)
    assert answer.headers["allow"] == "POST"
