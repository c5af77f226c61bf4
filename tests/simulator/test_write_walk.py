"""The registry's write calls (app.registry.resources `writes`) walked against the simulator's
own world (simulator.resources `writes`): written apart, they must agree. Every call is built
the way the service builds it (`write_path`, `write_body`, `sync_body`, `lookup_path`) and
cites the OpenAPI operations the two tables name."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app.registry import resources
from simulator.resources import KINDS
from tests.simulator.procore import auth

COMPANY, PROJECT = 31, 900
OPERATION = re.compile(r"^RestV\d+[A-Za-z]+(Get|Post|Patch|Delete)$")

# What a connector sends for a new one of each (the fields the create operations require).
NEW: dict[str, dict[str, Any]] = {
    "Projects": {"name": "Depot Annex"},
    "Company Users": {"email_address": "erp.user@example.com", "last_name": "Builder"},
    "Company Vendors": {"name": "Acme Electric"},
    "RFIs": {"subject": "Slab edge", "question": {"body": "Which detail?"}, "rfi_manager_id": 77,
             "number": "ERP-1"},
    "Observation Items": {"name": "Guardrail", "type_id": 3},
    "Purchase Order Contracts": {"title": "Rebar supply"},
    "Work Order Contracts": {"title": "Formwork"},
    "Direct Costs": {"invoice_number": "INV-1", "vendor_id": 4101, "direct_cost_type": "invoice"},
    "Cost Codes": {"name": "Concrete", "code": "03-100"},
}  # fmt: skip


def test_every_writable_type_has_a_sample_and_the_simulator_writes_it() -> None:
    assert set(NEW) == set(resources.WRITABLE)
    assert len(resources.WRITABLE) >= 8
    for name in resources.WRITABLE:
        kind, world = resources.REGISTRY[name], KINDS[name]
        assert world.writes is not None, name
        assert kind.writes is not None
        assert all(OPERATION.match(op) for op in kind.writes.operations), kind.writes.operations
        served = set(world.writes.operations) | set(world.operations)
        assert set(kind.writes.operations) <= served, (name, set(kind.writes.operations) - served)


def _scope(name: str) -> int | None:
    return None if resources.REGISTRY[name].company_level else PROJECT


@pytest.mark.parametrize("name", [n for n in resources.WRITABLE if resources.REGISTRY[n].writes
                                  and resources.REGISTRY[n].writes.sync])  # type: ignore[union-attr]  # fmt: skip
async def test_each_sync_action_creates_then_updates_by_origin_id(
    api: httpx.AsyncClient, token: str, name: str
) -> None:
    kind = resources.REGISTRY[name]
    assert kind.writes is not None
    assert kind.writes.sync is not None
    call, project = kind.writes.sync, _scope(name)
    path = resources.write_path(call, resource_id=None, company_id=COMPANY, project_id=project)
    ids = []
    for round_ in range(2):
        item = {**NEW[name], "origin_id": f"walk-{name}"}
        if round_:
            item["origin_data"] = "second"
        body = resources.sync_body(call, [item], company_id=COMPANY, project_id=project)
        answer = await api.request(call.method, path, headers=auth(token), json=body)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["errors"] == [], (name, answer.json())
        [entity] = answer.json()["entities"]
        assert entity["origin_id"] == f"walk-{name}"
        ids.append(entity["id"])
    assert ids[0] == ids[1], f"{name}: the second sync updated the first"
    shown = await api.get(
        resources.show_path(kind, ids[0], company_id=COMPANY, project_id=project),
        headers=auth(token),
    )
    assert shown.status_code == 200
    assert resources.unwrap(kind, shown.json(), ids[0])["origin_data"] == "second"


@pytest.mark.parametrize("name", ["RFIs", "Observation Items"])
async def test_each_plain_create_update_and_lookup(
    api: httpx.AsyncClient, token: str, name: str
) -> None:
    kind = resources.REGISTRY[name]
    writes = kind.writes
    assert writes is not None
    assert writes.create is not None
    assert writes.update is not None
    for field in writes.create_requires:
        assert field in NEW[name]
    created = await api.request(
        writes.create.method,
        resources.write_path(writes.create, resource_id=None, company_id=COMPANY,
                             project_id=PROJECT),
        headers=auth(token),
        json=resources.write_body(writes.create, NEW[name], company_id=COMPANY,
                                  project_id=PROJECT),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    updated = await api.request(
        writes.update.method,
        resources.write_path(writes.update, resource_id=rid, company_id=COMPANY,
                             project_id=PROJECT),
        headers=auth(token),
        json=resources.write_body(writes.update, {**NEW[name], "description": "changed"},
                                  company_id=COMPANY, project_id=PROJECT),
    )  # fmt: skip
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == rid
    assert updated.json()["description"] == "changed"
    if writes.lookup is not None:
        value = str(NEW[name][writes.lookup.field])
        path = resources.lookup_path(writes.lookup, value, company_id=COMPANY, project_id=PROJECT)
        listed = await api.get(path, headers=auth(token))
        assert [i["id"] for i in listed.json()] == [rid]
    if writes.delete is not None:
        path = resources.write_path(
            writes.delete, resource_id=rid, company_id=COMPANY, project_id=PROJECT
        )
        deleted = await api.request(writes.delete.method, path, headers=auth(token))
        assert deleted.status_code in (200, 204)
        again = await api.request(writes.delete.method, path, headers=auth(token))
        assert again.status_code == 404


@pytest.mark.parametrize(
    "name",
    [n for n in resources.WRITABLE if resources.REGISTRY[n].writes.delete],  # type: ignore[union-attr]
)
async def test_each_delete_removes_the_resource(
    api: httpx.AsyncClient, token: str, name: str
) -> None:
    kind = resources.REGISTRY[name]
    assert kind.writes is not None
    assert kind.writes.delete is not None
    seeded = await api.get("/_sim/resources", params={"company_id": COMPANY, "resource_name": name})
    rid = next(r["body"]["id"] for r in seeded.json() if r["project_id"] == PROJECT)
    path = resources.write_path(kind.writes.delete, resource_id=rid, company_id=COMPANY,
                                project_id=PROJECT)  # fmt: skip
    deleted = await api.request("DELETE", path, headers=auth(token))
    assert deleted.status_code in (200, 204), deleted.text
    shown = await api.get(
        resources.show_path(kind, rid, company_id=COMPANY, project_id=PROJECT), headers=auth(token)
    )
    assert shown.status_code == 404
