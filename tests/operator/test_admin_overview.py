"""GET /admin/summary, GET /admin/resources (the change feed), the audit trail, links."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import text

from app.connect.service import link_is_live
from app.feed import Feed
from app.health import heartbeat
from app.models import EventStatus, GateScope, GateState
from app.runtime import Runtime
from tests.factories import add_events, add_gate, add_resources, audit_rows


async def test_summary_counts(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    gate = await add_gate(db)
    await add_gate(db, scope=GateScope.PROJECT, project_id=900, state=GateState.SUSPECT)
    await add_events(db, 4, status=EventStatus.DONE)
    await add_events(db, 2, status=EventStatus.DEAD)
    await add_events(db, 3, status=EventStatus.PARKED, gate_id=gate.id)
    due = datetime.now(UTC) - timedelta(minutes=10)
    await add_events(db, 5, status=EventStatus.QUEUED, next_attempt_at=due)
    await add_events(
        db, 1, status=EventStatus.RETRYING, next_attempt_at=datetime.now(UTC) + timedelta(hours=1)
    )
    # Being processed under a live lease: not waiting. Its worker died (lease over): due.
    leased = datetime.now(UTC) + timedelta(minutes=2)
    await add_events(db, 1, status=EventStatus.PROCESSING, next_attempt_at=due, locked_until=leased)
    await add_events(
        db,
        1,
        status=EventStatus.PROCESSING,
        next_attempt_at=due,
        locked_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    async with db.sessions() as session, session.begin():
        await heartbeat.beat(session, heartbeat.WorkerIdentity(), jobs_done=0)

    body = (await client.get("/admin/summary", headers=admin)).json()
    assert body["events_by_status"] == {
        "queued": 5,
        "processing": 2,
        "retrying": 1,
        "parked": 3,
        "done": 4,
        "skipped": 0,
        "dead": 2,
        "ignored": 0,
        "unsupported": 0,
    }
    assert body["gates_by_state"] == {"open": 0, "suspect": 1, "parked": 1}
    assert body["gates_by_scope_and_state"]["company"] == {"open": 0, "suspect": 0, "parked": 1}
    assert body["gates_by_scope_and_state"]["project"] == {"open": 0, "suspect": 1, "parked": 0}
    assert body["parked_events"] == 3
    assert body["queue_depth"] == 6  # the retrying one is not due yet, one is being processed
    assert 590 < body["oldest_due_age_s"] < 700
    assert body["workers"]["alive"] == 1
    assert body["workers"]["newest_heartbeat_age_s"] < 5


async def walk_feed(
    client: httpx.AsyncClient, admin: dict[str, str], since: str | None, **params: object
) -> tuple[list[tuple[str, int]], str]:
    seen: list[tuple[str, int]] = []
    while True:
        query: dict[str, Any] = {**params, **({"since": since} if since else {})}
        response = await client.get("/admin/resources", params=query, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend((r["resource_name"], r["resource_id"]) for r in page["items"])
        since = page["next_cursor"]
        if not page["has_more"]:
            assert since is not None
            return seen, since


async def test_change_feed_walks_changes_in_order_and_resumes(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    gone = datetime.now(UTC) - timedelta(minutes=1)
    await add_resources(
        db,
        [
            {"resource_id": 1},
            {"resource_id": 2},
            {"resource_id": 3, "deleted_at": gone, "data": None},
            {"resource_id": 4, "resource_name": "Submittals"},
            {"resource_id": 5, "company_id": 32},
        ],
    )
    seen, cursor = await walk_feed(client, admin, None, limit=2)
    assert seen == [("RFIs", 1), ("RFIs", 2), ("RFIs", 3), ("Submittals", 4), ("RFIs", 5)]

    full = (await client.get("/admin/resources", headers=admin)).json()["items"]
    tombstone = full[2]
    assert tombstone["deleted_at"] is not None
    assert tombstone["data"] is None
    assert [r["change_seq"] for r in full] == sorted(r["change_seq"] for r in full)

    # Nothing new: the same cursor comes back, with nothing in it.
    empty = (await client.get("/admin/resources", params={"since": cursor}, headers=admin)).json()
    assert empty == {"items": [], "next_cursor": cursor, "has_more": False}

    # A row changed again shows up again, after the cursor, with its newest state.
    async with db.sessions() as session, session.begin():
        await session.execute(
            text(
                'UPDATE resources SET data = \'{"id": 1, "title": "new"}\', '
                "change_seq = nextval('resource_change_seq') WHERE resource_id = 1"
            )
        )
    changed = (await client.get("/admin/resources", params={"since": cursor}, headers=admin)).json()
    assert [(r["resource_id"], r["data"]) for r in changed["items"]] == [
        (1, {"id": 1, "title": "new"})
    ]

    only_32, _ = await walk_feed(client, admin, None, company_id=32)
    assert only_32 == [("RFIs", 5)]
    only_submittals, _ = await walk_feed(client, admin, None, resource_name="Submittals")
    assert only_submittals == [("Submittals", 4)]

    bad = await client.get("/admin/resources", params={"since": "garbage"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "since"]
    events_cursor = await client.get(
        "/admin/resources", params={"since": "events.1"}, headers=admin
    )
    assert events_cursor.status_code == 422


async def test_change_feed_waits_for_a_writer_still_in_flight(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    """A writer that took a lower change_seq but commits later is not skipped."""
    await add_resources(db, [{"resource_id": 1}])
    _, cursor = await walk_feed(client, admin, None)

    async with db.engine.connect() as slow:
        transaction = await slow.begin()
        await slow.execute(
            text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": Feed.RESOURCES.lock}
        )
        await slow.execute(
            text(
                "INSERT INTO resources (company_id, resource_name, resource_id, data) "
                "VALUES (31, 'RFIs', 2, '{}')"
            )
        )
        await add_resources(db, [{"resource_id": 3}])  # a faster writer, a higher seq
        reader = asyncio.create_task(
            client.get("/admin/resources", params={"since": cursor}, headers=admin)
        )
        await asyncio.sleep(0.3)
        assert not reader.done()  # the feed waits rather than hand out 3 before 2
        await transaction.commit()
        response = await asyncio.wait_for(reader, 10)
    assert [r["resource_id"] for r in response.json()["items"]] == [2, 3]


async def test_audit_trail_lists_actions_newest_first(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    [first, second] = await add_events(db, 2, status=EventStatus.DEAD)
    for event_id in (first, second):
        await client.post(f"/admin/events/{event_id}/replay", headers=admin)
    page = (await client.get("/admin/actions", params={"limit": 1}, headers=admin)).json()
    assert [a["target"] for a in page["items"]] == [f"event:{second}"]
    rest = await client.get("/admin/actions", params={"cursor": page["next_cursor"]}, headers=admin)
    assert [a["target"] for a in rest.json()["items"]] == [f"event:{first}"]


async def test_connect_link_is_live_and_audited(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/connect-links", json={"company_id": 31}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["company_id"] == 31
    url = urlsplit(body["url"])
    assert url.path == "/connect/procore"
    state = parse_qs(url.query)["state"][0]
    async with db.sessions() as session:
        assert await link_is_live(session, state)
    anonymous = await client.post("/admin/connect-links", headers=admin)
    assert anonymous.json()["company_id"] is None

    actions = [(a.action, a.target) for a in await audit_rows(db)]
    assert actions == [("connect_link", "company:31"), ("connect_link", None)]
    assert state not in str([a.detail for a in await audit_rows(db)])


async def test_setup_link_opens_the_company_page_and_is_audited(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/setup-links", json={"company_id": 31}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["company_id"] == 31
    expires, _, mac = body["embed_key"].partition(".")
    assert expires.isdigit()
    assert len(mac) == 43
    url = urlsplit(body["url"])
    page = await client.get(f"{url.path}?{url.query}")
    assert page.status_code == 200
    assert 'id="company"' in page.text
    [action] = await audit_rows(db)
    assert (action.action, action.target) == ("setup_link", "company:31")
    for bad in ({}, {"company_id": 0}, {"company_id": "x"}):
        refused = await client.post("/admin/setup-links", json=bad, headers=admin)
        assert refused.status_code == 422, bad
