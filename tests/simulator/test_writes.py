"""The simulator's write calls, as Procore answers them.

Sources: `tutorials/using_sync_actions.md` (sync: up to 1000 items, always 200 with `entities`
and per-item `errors`, matched by `id` or `origin_id`, `origin_id` unique within a company and
reusable across companies); the OpenAPI operations each case names (required body fields,
where the scope goes, the status of each answer); FACTS.md §1 (a change an app made comes back
as a webhook with `metadata.source_application_id` = its client id), §6 (403 "not connected",
422 for business rules).
"""

from __future__ import annotations

from typing import Any

import httpx

from simulator import DEFAULT_CLIENT_ID
from tests.simulator.procore import auth, stats
from tests.simulator.receiver import Receiver

VENDORS_SYNC = "/rest/v1.0/vendors/sync"  # RestV10VendorsSyncPatch


async def sync_vendors(
    api: httpx.AsyncClient, token: str, updates: list[Any], company_id: int = 31
) -> dict[str, Any]:
    answer = await api.patch(
        VENDORS_SYNC,
        headers=auth(token, company_id),
        json={"company_id": company_id, "updates": updates},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def vendors(api: httpx.AsyncClient, company_id: int) -> list[dict[str, Any]]:
    listed = await api.get(
        "/_sim/resources", params={"company_id": company_id, "resource_name": "Company Vendors"}
    )
    return [r["body"] for r in listed.json()]


async def test_sync_creates_then_updates_by_origin_id(api: httpx.AsyncClient, token: str) -> None:
    created = await sync_vendors(api, token, [{"origin_id": "erp-1", "name": "Acme Electric"}])
    again = await sync_vendors(api, token, [{"origin_id": "erp-1", "name": "Acme Electric Co"}])

    [entity] = created["entities"]
    assert created["errors"] == []
    assert entity["origin_id"] == "erp-1"
    assert entity["name"] == "Acme Electric"
    [updated] = again["entities"]
    assert updated["id"] == entity["id"], "origin_id found → update, not a second vendor"
    assert updated["name"] == "Acme Electric Co"
    assert updated["updated_at"] > entity["updated_at"]
    assert [v["id"] for v in await vendors(api, 31) if v.get("origin_id") == "erp-1"] == [
        entity["id"]
    ]


async def test_sync_reports_each_failed_item_in_a_200(api: httpx.AsyncClient, token: str) -> None:
    """ "The API will always return an HTTP status of 200"; a failed item is echoed with an
    `errors` attribute; an unknown `id` is an error ("Entity with this ID not found")."""
    answer = await sync_vendors(
        api,
        token,
        [
            {"origin_id": "ok-1", "name": "Valid Vendor"},
            {"origin_id": "bad-1", "abbreviated_name": "no name"},
            {"id": 999_999, "name": "Nobody has this id"},
        ],
    )

    assert [e["origin_id"] for e in answer["entities"]] == ["ok-1"]
    blank = {"name": ["can't be blank"]}
    unknown = {"id": ["Entity with this ID not found"]}
    assert answer["errors"] == [
        {"origin_id": "bad-1", "abbreviated_name": "no name", "errors": blank},
        {"id": 999_999, "name": "Nobody has this id", "errors": unknown},
    ]
    assert [v for v in await vendors(api, 31) if v.get("origin_id") == "bad-1"] == []


async def test_origin_id_is_unique_within_a_company_and_free_across_companies(
    api: httpx.AsyncClient, token: str
) -> None:
    """ "The same Origin ID may not be used in more than one project within a given company";
    "the same Origin ID can be used in more than one company" (RestV10CostCodesSyncPatch,
    RestV10VendorsSyncPatch)."""
    path = "/rest/v1.0/cost_codes/sync?project_id={}"
    item = {"origin_id": "cc-100", "name": "Concrete", "code": "03-100"}
    first = await api.patch(path.format(900), headers=auth(token), json={"updates": [item]})
    other_project = await api.patch(path.format(901), headers=auth(token), json={"updates": [item]})
    in_32 = await sync_vendors(api, token, [{"origin_id": "shared", "name": "B"}], company_id=32)
    in_31 = await sync_vendors(api, token, [{"origin_id": "shared", "name": "A"}])

    assert first.status_code == other_project.status_code == 200
    assert first.json()["entities"][0]["origin_id"] == "cc-100"
    assert other_project.json()["entities"] == []
    assert other_project.json()["errors"][0]["errors"] == {"origin_id": ["has already been taken"]}
    assert in_31["entities"][0]["id"] != in_32["entities"][0]["id"]


async def test_sync_takes_at_most_1000_items(api: httpx.AsyncClient, token: str) -> None:
    updates = [{"origin_id": f"o-{n}", "name": f"V {n}"} for n in range(1001)]
    answer = await api.patch(
        VENDORS_SYNC, headers=auth(token), json={"company_id": 31, "updates": updates}
    )
    assert answer.status_code == 422
    assert "1000" in answer.json()["errors"][0]
    assert not [v for v in await vendors(api, 31) if str(v.get("origin_id", "")).startswith("o-")]


async def test_a_create_without_its_required_fields_is_a_422(
    api: httpx.AsyncClient, token: str
) -> None:
    """RestV10ProjectsProjectIdRfisPost requires `rfi.subject`, `rfi.question`,
    `rfi.rfi_manager_id`; a body without the `rfi` key is refused with 400."""
    path = "/rest/v1.0/projects/900/rfis"
    missing = await api.post(path, headers=auth(token), json={"rfi": {"subject": "Slab"}})
    unwrapped = await api.post(path, headers=auth(token), json={"subject": "Slab"})
    before = (await stats(api))["writes"]

    assert missing.status_code == 422
    assert missing.json() == {
        "errors": {"question": ["can't be blank"], "rfi_manager_id": ["can't be blank"]}
    }
    assert unwrapped.status_code == 400
    assert "rfi" in unwrapped.json()["errors"][0]
    assert before == {}


async def test_create_update_delete_one_call_each(api: httpx.AsyncClient, token: str) -> None:
    """RestV10ObservationsItemsPost (201, `project_id` in the body), ...IdPatch (200),
    RestV10ProjectsProjectIdObservationsItemsIdDelete (204, then 404)."""
    fields = {"name": "Missing guardrail", "type_id": 3}
    created = await api.post(
        "/rest/v1.0/observations/items",
        headers=auth(token),
        json={"project_id": 900, "observation": fields},
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    updated = await api.patch(
        f"/rest/v1.0/observations/items/{rid}",
        headers=auth(token),
        json={"project_id": 900, "observation": {**fields, "priority": "High"}},
    )
    deleted = await api.delete(
        f"/rest/v1.0/projects/900/observations/items/{rid}", headers=auth(token)
    )
    again = await api.delete(
        f"/rest/v1.0/projects/900/observations/items/{rid}", headers=auth(token)
    )
    shown = await api.get(
        f"/rest/v1.0/observations/items/{rid}?project_id=900", headers=auth(token)
    )

    assert updated.status_code == 200
    assert updated.json()["priority"] == "High"
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == shown.status_code == 404
    assert (await stats(api))["writes"] == {
        "Observation Items": {"create": 1, "delete": 1, "update": 1}
    }


async def test_writes_meet_the_same_gate_as_reads(api: httpx.AsyncClient, token: str) -> None:
    """Company 33 has not installed the app: 403 "not connected"; no token: 401; a project
    the service account may not see: 403."""
    not_installed = await api.patch(
        "/rest/v1.0/work_order_contracts/sync",
        headers=auth(token, 33),
        json={"project_id": 920, "updates": [{"origin_id": "w-1"}]},
    )
    no_token = await api.patch(
        VENDORS_SYNC, headers={"Procore-Company-Id": "31"}, json={"company_id": 31, "updates": []}
    )
    not_permitted = await api.post(
        "/rest/v1.0/projects/902/rfis",
        headers=auth(token),
        json={"rfi": {"subject": "s", "question": {"body": "q"}, "rfi_manager_id": 77}},
    )

    assert not_installed.status_code == 403
    assert not_installed.json() == {"errors": ["App is not connected to this company."]}
    assert no_token.status_code == 401
    assert not_permitted.status_code == 403
    assert (await stats(api))["writes"] == {}


async def test_each_applied_change_comes_back_as_the_clients_own_webhook(
    api: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    hook = await api.post("/_sim/hooks", json={"destination_url": receiver.url})
    assert hook.status_code == 201

    synced = await sync_vendors(
        api, token, [{"origin_id": "echo-1", "name": "Echo"}, {"origin_id": "echo-2"}]
    )
    received = await receiver.wait_for(1)

    [entity] = synced["entities"]
    [event] = [r.json() for r in received]
    assert event["resource_name"] == "Company Vendors"
    assert event["resource_id"] == entity["id"]
    assert event["event_type"] == "create"
    assert event["metadata"]["source_application_id"] == DEFAULT_CLIENT_ID
    assert (await api.post("/_sim/drain", json={"timeout_s": 5})).json()["drained"]
    assert len(receiver.received) == 1, "the refused item changed nothing: no webhook"


async def test_a_lost_answer_comes_after_the_change_was_made(
    api: httpx.AsyncClient, token: str
) -> None:
    """`lost_answer_rate`: the call is acted on, then the connection closes unanswered."""
    await api.put("/_sim/faults", json={"lost_answer_rate": 1.0})
    try:
        await sync_vendors(api, token, [{"origin_id": "lost-1", "name": "Lost"}])
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the answer was delivered")
    await api.delete("/_sim/faults")

    assert [v["name"] for v in await vendors(api, 31) if v.get("origin_id") == "lost-1"] == ["Lost"]
    faults = (await stats(api))["faults"]
    assert faults["lost_answers"] == 1
    calls = (await api.get("/_sim/calls")).json()
    assert calls["by_status"].get("lost:200") == 1


async def test_lists_filter_by_origin_id_and_rfi_number(api: httpx.AsyncClient, token: str) -> None:
    """`filters[origin_id]` (RestV10VendorsGet) and `filters[number]`
    (RestV10ProjectsProjectIdRfisGet)."""
    await sync_vendors(api, token, [{"origin_id": "f-1", "name": "Filter me"}])
    created = await api.post(
        "/rest/v1.0/projects/900/rfis",
        headers=auth(token),
        json={"rfi": {"subject": "s", "question": {"body": "q"}, "rfi_manager_id": 77,
                      "number": "RFI-77"}},
    )  # fmt: skip
    assert created.status_code == 201

    by_origin = await api.get(
        "/rest/v1.0/vendors?company_id=31&filters[origin_id]=f-1", headers=auth(token)
    )
    by_number = await api.get(
        "/rest/v1.0/projects/900/rfis?filters[number]=RFI-77", headers=auth(token)
    )

    assert [v["name"] for v in by_origin.json()] == ["Filter me"]
    assert [r["id"] for r in by_number.json()] == [created.json()["id"]]
