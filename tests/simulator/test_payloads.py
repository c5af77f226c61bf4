"""Webhook bodies in the v2.0, v3.0 and v4.0 shapes, field by field (FACTS.md §1)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.simulator.receiver import Receiver

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
AUTHORIZATION = "Bearer webhook-shared-value"


async def deliver(
    api: httpx.AsyncClient, receiver: Receiver, hook: dict[str, Any], event: dict[str, Any]
) -> list[dict[str, Any]]:
    """Register a hook, emit one change, and return the bodies the receiver got."""
    settings = {"destination_url": receiver.url, "authorization": AUTHORIZATION, **hook}
    assert (await api.post("/_sim/hooks", json=settings)).status_code == 201
    emitted = await api.post("/_sim/events", json={"company_id": 31, **event})
    assert emitted.status_code == 200, emitted.text
    assert (await api.post("/_sim/drain", json={"timeout_s": 5})).json() == {"drained": True}
    return [r.json() for r in receiver.received]


RFI_UPDATE = {
    "project_id": 900,
    "resource_name": "RFIs",
    "resource_id": 5150,
    "event_type": "update",
}


async def test_v2_shape(api: httpx.AsyncClient, receiver: Receiver) -> None:
    (body,) = await deliver(api, receiver, {"payload_version": "v2.0"}, RFI_UPDATE)

    assert list(body) == [
        "id",
        "ulid",
        "timestamp",
        "metadata",
        "user_id",
        "company_id",
        "project_id",
        "api_version",
        "event_type",
        "resource_name",
        "resource_id",
    ]
    assert isinstance(body["id"], int)
    assert 2**53 < body["id"] < 2**63
    assert ULID.match(body["ulid"])
    assert MICROS.match(body["timestamp"])
    assert body["metadata"] == {
        "source_user_id": 77,
        "source_company_id": 31,
        "source_project_id": 900,
        "source_operation_id": None,
        "source_application_id": None,
    }
    assert body["user_id"] == 77
    assert (body["company_id"], body["project_id"]) == (31, 900)
    assert body["api_version"] == "v2.0"
    assert (body["event_type"], body["resource_name"], body["resource_id"]) == (
        "update",
        "RFIs",
        5150,
    )


async def test_delivery_request_headers(api: httpx.AsyncClient, receiver: Receiver) -> None:
    await deliver(api, receiver, {}, RFI_UPDATE)

    (request,) = receiver.received
    assert request.headers["authorization"] == AUTHORIZATION
    assert request.headers["content-type"] == "application/json"
    assert not any("signature" in name for name in request.headers)


async def test_v2_short_api_version_and_source_application(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    (body,) = await deliver(
        api,
        receiver,
        {"payload_version": "v2.0", "short_api_version": True},
        {**RFI_UPDATE, "source_application_id": "sim-client"},
    )

    assert body["api_version"] == "v2"
    assert body["metadata"]["source_application_id"] == "sim-client"


async def test_company_level_resource_has_null_project(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    (body,) = await deliver(api, receiver, {}, {"resource_name": "Projects", "resource_id": 900})

    assert body["project_id"] is None
    assert body["metadata"]["source_project_id"] is None
    assert body["resource_name"] == "Projects"


async def test_company_level_project_id_can_be_absent(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    (body,) = await deliver(
        api,
        receiver,
        {"omit_null_project_id": True},
        {"resource_name": "Company Users", "resource_id": 3001},
    )

    assert "project_id" not in body


async def test_v3_adds_related_resources(api: httpx.AsyncClient, receiver: Receiver) -> None:
    bodies = await deliver(api, receiver, {"payload_version": "v3.0"}, {**RFI_UPDATE, "count": 1})
    await api.post(
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 900,
            "resource_name": "Direct Cost Line Items",
            "resource_id": 61,
            "event_type": "create",
            "related_resources": [{"id": 60, "name": "Direct Costs"}],
        },
    )
    second = (await receiver.wait_for(2))[1].json()

    assert bodies[0]["related_resources"] == []
    assert bodies[0]["api_version"] == "v3.0"
    assert list(bodies[0])[-1] == "related_resources"
    assert second["related_resources"] == [{"id": 60, "name": "Direct Costs"}]
    assert second["resource_name"] == "Direct Cost Line Items"


async def test_v4_shape(api: httpx.AsyncClient, receiver: Receiver) -> None:
    (body,) = await deliver(
        api,
        receiver,
        {"payload_version": "v4.0"},
        {
            "project_id": 900,
            "resource_name": "Submittals",
            "resource_id": 8812,
            "reason": "updated",
        },
    )

    assert list(body) == [
        "id",
        "timestamp",
        "reason",
        "company_id",
        "project_id",
        "user_id",
        "resource_type",
        "resource_id",
    ]
    assert ULID.match(body["id"])
    assert MICROS.match(body["timestamp"])
    assert body["reason"] == "updated"
    assert body["company_id"] == "31"
    assert body["project_id"] == "900"
    assert body["user_id"] == "77"
    assert body["resource_type"] == "Submittals"
    assert body["resource_id"] == "8812"


async def test_v4_company_level(api: httpx.AsyncClient, receiver: Receiver) -> None:
    (body,) = await deliver(
        api,
        receiver,
        {"payload_version": "v4.0"},
        {"resource_name": "Company Users", "resource_id": 3001},
    )

    assert body["project_id"] is None
    assert body["reason"] == "update"


async def test_each_hook_gets_its_own_event_ids(api: httpx.AsyncClient, receiver: Receiver) -> None:
    await api.post("/_sim/hooks", json={"destination_url": receiver.url, "payload_version": "v2.0"})
    bodies = await deliver(api, receiver, {"payload_version": "v4.0"}, RFI_UPDATE)

    v2 = next(b for b in bodies if "ulid" in b)
    v4 = next(b for b in bodies if "reason" in b)
    assert v2["ulid"] != v4["id"]
    assert v2["timestamp"] == v4["timestamp"]


async def test_ulids_sort_in_creation_order(api: httpx.AsyncClient, receiver: Receiver) -> None:
    bodies = await deliver(api, receiver, {}, {**RFI_UPDATE, "count": 20})

    ulids = [b["ulid"] for b in bodies]
    ids = [b["id"] for b in bodies]
    assert ulids == sorted(ulids)
    assert len(set(ulids)) == 20
    assert ids == sorted(ids)


async def test_fan_out_one_event_per_project(api: httpx.AsyncClient, receiver: Receiver) -> None:
    bodies = await deliver(
        api, receiver, {}, {"resource_name": "Company Users", "resource_id": 3001, "fan_out": True}
    )

    assert sorted(b["project_id"] for b in bodies) == [900, 901, 902, 903]
    assert len({b["timestamp"] for b in bodies}) == 1
    assert len({b["ulid"] for b in bodies}) == 4
