"""The service's resource registry walked against the simulator's own world.

The two tables are written apart (a shared table would make them agree by construction);
this walk is where they must agree: every show and list call of the registry answers, the
levels and id types match, and the list filters behave as Procore documents them (default
lists answer active records only, FACTS.md §4; daily-log lists answer today unless given
dates, `tutorials/daily_logs.md`; OpenAPI operations cited in app.registry.resources)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.registry import resources
from app.resync import plan
from simulator.resources import KINDS
from tests.simulator.procore import auth

COMPANY, PROJECT = 31, 900
OPERATION = re.compile(r"^RestV\d+[A-Za-z]+(Get|Post|Patch)$")


async def listed(api: httpx.AsyncClient, token: str, kind: resources.ResourceType) -> list[Any]:
    """Every item of the type's lists over the resync horizon, as resync reads them."""
    found: list[Any] = []
    parts = plan.plan_parts([kind.name], [PROJECT], today=datetime.now(UTC).date(), log_days=90)
    for part in parts:
        answer = await api.get(plan.page_path(part, COMPANY, 1, 1000), headers=auth(token))
        assert answer.status_code == 200, (kind.name, part, answer.text)
        body = resources.unwrap(kind, answer.json())
        assert isinstance(body, list), kind.name
        found += body
    return found


@pytest.mark.parametrize("name", resources.NAMES)
async def test_every_registered_type_is_served_as_the_registry_says(
    api: httpx.AsyncClient, token: str, name: str
) -> None:
    kind = resources.REGISTRY[name]
    world = KINDS[name]
    assert kind.company_level is world.company_level, "levels agree"
    assert kind.operations, "each entry cites Procore's OpenAPI operations"
    assert all(OPERATION.match(op) for op in kind.operations), kind.operations
    items = await listed(api, token, kind)
    assert items, f"the seed holds no {name} for company {COMPANY}"
    for item in items:
        rid = plan.listed_id(kind, item)
        assert isinstance(rid, int), "ids are integers (v1 answers)"
        project = None if kind.company_level else PROJECT
        path = resources.show_path(kind, rid, company_id=COMPANY, project_id=project)
        answer = await api.get(path, headers=auth(token))
        assert answer.status_code == 200, (name, path, answer.text)
        shown = resources.unwrap(kind, answer.json(), rid)
        assert isinstance(shown, dict), (name, path)
        assert shown["id"] == rid
        if kind.updated_field is not None and "updated_at" in shown:
            assert datetime.fromisoformat(shown[kind.updated_field]).tzinfo is not None


async def test_a_resource_a_list_by_id_does_not_hold_is_not_found(
    api: httpx.AsyncClient, token: str
) -> None:
    kind = resources.REGISTRY["Direct Cost Line Items"]
    path = resources.show_path(kind, 999_999, company_id=COMPANY, project_id=PROJECT)
    answer = await api.get(path, headers=auth(token))
    assert answer.status_code == 200
    assert resources.unwrap(kind, answer.json(), 999_999) is None


async def test_inactive_records_are_in_the_lists_the_registry_reads(
    api: httpx.AsyncClient, token: str
) -> None:
    """RestV10ProjectsGet "Return a list of active Projects" (`filters[by_status]=All` for
    every one); RestV10CompaniesCompanyIdUsersGet lists active users and
    RestV10CompaniesCompanyIdUsersInactiveGet the inactive ones; vendors likewise."""
    default = await api.get(f"/rest/v1.0/projects?company_id={COMPANY}", headers=auth(token))
    assert 903 not in [p["id"] for p in default.json()]
    for name, inactive_id in (
        ("Projects", 903),
        ("Company Users", 3004),
        ("Company Vendors", 4102),
    ):
        ids = [i["id"] for i in await listed(api, token, resources.REGISTRY[name])]
        assert inactive_id in ids, name
        assert len(ids) == len(set(ids)), f"{name}: each record listed once"


async def test_daily_logs_of_past_days_are_in_the_resync_window(
    api: httpx.AsyncClient, token: str
) -> None:
    today = datetime.now(UTC).date()
    path = f"/rest/v1.0/projects/{PROJECT}/manpower_logs"
    plain = await api.get(path, headers=auth(token))
    days = {item["date"] for item in plain.json()}
    # Without dates: today's logs only, and approved ones only.
    assert days == {today.isoformat()}
    assert {item["status"] for item in plain.json()} == {"approved"}
    windowed = [i["id"] for i in await listed(api, token, resources.REGISTRY["Manpower Logs"])]
    # 10002 is five days old, 10003 is pending.
    assert {10001, 10002, 10003} <= set(windowed)
    past = (today - timedelta(days=5)).isoformat()
    one_day = await api.get(f"{path}?log_date={past}", headers=auth(token))
    assert [i["id"] for i in one_day.json()] == [10002]
