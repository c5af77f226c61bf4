"""Running the simulator: seeds, reset, the in-process server and `serve()`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from simulator import SimulatorServer, load_seed
from tests.simulator.procore import auth, client_credentials_token

SEED = {
    "companies": [
        {"id": 7, "name": "Seeded Co", "projects": [{"id": 70, "name": "Seeded Tower"}]},
        {"id": 8, "name": "Not Yet", "installed": False},
    ],
    "resources": [
        {
            "resource_name": "RFIs",
            "id": 700,
            "company_id": 7,
            "project_id": 70,
            "fields": {"subject": "Seeded"},
        }
    ],
    "rate_limit": {"hourly": 600, "spike": 25},
}


async def test_seed_file(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(SEED))

    async with (
        SimulatorServer(seed_file) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        token = await client_credentials_token(
            client
        )  # a client-less seed keeps the default client
        rfi = await client.get("/rest/v1.0/projects/70/rfis/700", headers=auth(token, 7))
        companies = await client.get("/rest/v1.0/companies", headers=auth(token, 7))

    assert rfi.json()["subject"] == "Seeded"
    assert [c["id"] for c in companies.json()] == [7]
    assert rfi.headers["x-rate-limit-limit"] == "25"


def test_seed_rejects_unknown_keys(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"companys": []}))

    with pytest.raises(ValidationError):
        load_seed(seed_file)


async def test_reset_restores_the_seeded_world(api: httpx.AsyncClient, token: str) -> None:
    await api.put("/_sim/companies/31", json={"installed": False, "name": "Renamed"})
    await api.put("/_sim/companies/40", json={"name": "New Co"})
    await api.post("/_sim/hooks", json={"destination_url": "http://127.0.0.1:9/x"})
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

    await api.post("/_sim/reset")

    companies = (await api.get("/_sim/companies")).json()
    assert [(c["id"], c["name"], c["installed"]) for c in companies] == [
        (31, "Acme Builders", True),
        (32, "Borealis Construction", True),
        (33, "Cobalt Contractors", False),
    ]
    assert (await api.get("/_sim/hooks")).json() == []
    rfis = (
        await api.get("/_sim/resources", params={"resource_name": "RFIs", "project_id": 900})
    ).json()
    assert [r["body"]["id"] for r in rfis] == [5150, 5151]


async def test_control_api_refuses_bad_bodies(api: httpx.AsyncClient) -> None:
    unknown_field = await api.put("/_sim/companies/31", json={"instaled": False})
    not_json = await api.put(
        "/_sim/faults", content=b"{", headers={"content-type": "application/json"}
    )
    bad_rate = await api.put("/_sim/faults", json={"error_rate": 2})

    assert unknown_field.status_code == 422
    assert not_json.status_code == 400
    assert bad_rate.status_code == 422
    assert "error_rate" in bad_rate.json()["errors"][0]


async def test_control_creates_companies_projects_and_resources(
    api: httpx.AsyncClient, token: str
) -> None:
    await api.put("/_sim/companies/40", json={"name": "New Co", "installed": True})
    await api.put("/_sim/companies/40/projects/4000", json={"name": "New Tower", "permitted": True})
    created = await api.post(
        "/_sim/resources",
        json={"resource_name": "RFIs", "company_id": 40, "project_id": 4000, "id": 40001},
    )
    rfi = await api.get("/rest/v1.0/projects/4000/rfis/40001", headers=auth(token, 40))
    deleted = await api.delete("/_sim/resources/RFIs/40001")
    gone = await api.get("/rest/v1.0/projects/4000/rfis/40001", headers=auth(token, 40))

    assert created.status_code == 201
    assert rfi.status_code == 200
    assert deleted.status_code == 200
    assert gone.status_code == 404


def test_serve_prints_where_everything_is() -> None:
    code = "from simulator.server import serve; serve('127.0.0.1', 0, None)"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        base_url = banner[0].split(" on ")[1].strip()
        answer = httpx.get(f"{base_url}/_sim", timeout=5)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert answer.status_code == 200
    assert "POST /_sim/reset" in answer.json()["endpoints"]
    printed = "".join(banner) + output
    assert "sim-client" in printed
    assert "sim-secret" not in printed
