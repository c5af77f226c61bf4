"""GET /admin/events (filters, cursor pages), GET one, replay one, replay by filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.events.dispatch import take_due
from app.models import EventStatus
from app.runtime import Runtime
from tests.factories import add_events, audit_rows, load_event


async def walk(
    client: httpx.AsyncClient, admin: dict[str, str], **params: object
) -> tuple[list[int], int]:
    """Every id the listing yields, page by page, and the number of pages."""
    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        query: dict[str, Any] = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/admin/events", params=query, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        seen.extend(e["id"] for e in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_cursor_walks_every_row_exactly_once(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], order: str
) -> None:
    ids = await add_events(db, 23, status=EventStatus.DONE)
    seen, pages = await walk(client, admin, limit=5, order=order)
    assert sorted(seen) == ids
    assert len(set(seen)) == len(seen) == 23
    assert seen == (sorted(ids, reverse=True) if order == "desc" else ids)
    assert pages == 5


async def test_rows_arriving_during_a_walk_never_shift_a_page(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    ids = await add_events(db, 6)
    first = (await client.get("/admin/events", params={"limit": 3}, headers=admin)).json()
    await add_events(db, 4)  # newer rows, ahead of the cursor
    rest = await client.get(
        "/admin/events", params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin
    )
    seen = [e["id"] for e in first["items"]] + [e["id"] for e in rest.json()["items"]]
    assert seen == sorted(ids, reverse=True)


async def test_filters(client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    dead = await add_events(db, 2, status=EventStatus.DEAD)
    skipped = await add_events(db, 1, status=EventStatus.SKIPPED, company_id=32)
    submittal = await add_events(db, 1, status=EventStatus.DEAD, resource_name="Submittals")
    ancient = await add_events(db, 1, status=EventStatus.DEAD, received_at=old)
    await add_events(db, 3, status=EventStatus.DONE)

    async def ids(**params: Any) -> list[int]:
        response = await client.get("/admin/events", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return sorted(e["id"] for e in response.json()["items"])

    assert await ids(status="dead") == sorted(dead + submittal + ancient)
    assert await ids(status=["dead", "skipped"], company_id=32) == skipped
    assert await ids(status="dead", resource_name="Submittals") == submittal
    since = (old + timedelta(days=1)).isoformat()
    assert await ids(status="dead", received_since=since) == sorted(dead + submittal)
    assert await ids(status="dead", received_until=since) == ancient
    naive = (old + timedelta(days=1)).replace(tzinfo=None).isoformat()  # taken as UTC
    assert await ids(status="dead", received_until=naive) == ancient


async def test_bad_parameters_name_the_field(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    bad = await client.get("/admin/events", params={"cursor": "not-a-cursor"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "cursor"]
    foreign = await client.get("/admin/events", params={"cursor": "gates.1"}, headers=admin)
    assert foreign.status_code == 422
    await add_events(db, 3)
    page = (await client.get("/admin/events", params={"limit": 1}, headers=admin)).json()
    # A cursor is a position: the other order continues from it too, skipping nothing.
    other_order = await client.get(
        "/admin/events",
        params={"cursor": page["next_cursor"], "order": "asc"},
        headers=admin,
    )
    assert other_order.status_code == 200
    assert other_order.json()["items"] == []  # nothing after the newest row
    for params in ({"limit": 501}, {"limit": 0}, {"status": "nope"}, {"company_id": "x"}):
        response = await client.get("/admin/events", params=params, headers=admin)
        assert response.status_code == 422, params


async def test_one_event_with_its_raw_payload(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    [event_id] = await add_events(db, 1, raw={"resource_name": "RFIs", "extra": [1, 2]})
    body = (await client.get(f"/admin/events/{event_id}", headers=admin)).json()
    assert body["raw"] == {"resource_name": "RFIs", "extra": [1, 2]}
    assert body["status"] == "done"
    listed = (await client.get("/admin/events", headers=admin)).json()["items"][0]
    assert "raw" not in listed
    assert (await client.get("/admin/events/999999", headers=admin)).status_code == 404


@pytest.mark.parametrize("status", [EventStatus.DEAD, EventStatus.SKIPPED])
async def test_replay_sends_a_final_event_back_to_the_queue(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], status: EventStatus
) -> None:
    [event_id] = await add_events(
        db,
        1,
        status=status,
        last_error="expired_while_parked" if status is EventStatus.DEAD else "404",
        locked_until=datetime.now(UTC) + timedelta(minutes=5),
        next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
    )
    response = await client.post(f"/admin/events/{event_id}/replay", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["replayed"] is True
    assert response.json()["event"]["status"] == "queued"

    event = await load_event(db, event_id)
    assert event.status is EventStatus.QUEUED
    assert event.attempts == 0
    assert event.locked_until is None
    assert event.finished_at is None
    assert event.next_attempt_at <= datetime.now(UTC)
    # The dispatcher hands it out at its next tick.
    async with db.sessions() as session, session.begin():
        due = await take_due(session, total=10, per_company=10, lease_seconds=30, max_backlog=100)
    assert [row.id for row in due] == [event_id]

    [action] = await audit_rows(db)
    assert (action.action, action.target) == ("event_replay", f"event:{event_id}")
    assert action.actor.startswith("admin:")
    assert len(action.actor) == len("admin:") + 8


@pytest.mark.parametrize(
    "status",
    [EventStatus.QUEUED, EventStatus.PROCESSING, EventStatus.RETRYING, EventStatus.PARKED],
)
async def test_replay_of_an_unfinished_event_is_409(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], status: EventStatus
) -> None:
    [event_id] = await add_events(db, 1, status=status)
    for body in (None, {"force": True}):
        response = await client.post(f"/admin/events/{event_id}/replay", json=body, headers=admin)
        assert response.status_code == 409, response.text
    assert (await load_event(db, event_id)).status is status
    assert await audit_rows(db) == []


@pytest.mark.parametrize("status", [EventStatus.IGNORED, EventStatus.UNSUPPORTED, EventStatus.DONE])
async def test_replay_of_ignored_unsupported_or_done_needs_force(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], status: EventStatus
) -> None:
    [event_id] = await add_events(db, 1, status=status)
    refused = await client.post(f"/admin/events/{event_id}/replay", headers=admin)
    assert refused.status_code == 409
    assert "force" in refused.json()["detail"]
    forced = await client.post(
        f"/admin/events/{event_id}/replay", json={"force": True}, headers=admin
    )
    assert forced.status_code == 200
    assert (await load_event(db, event_id)).status is EventStatus.QUEUED
    [action] = await audit_rows(db)
    assert action.detail == {"force": True}


async def test_replay_of_an_unknown_event_is_404(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/events/424242/replay", headers=admin)
    assert response.status_code == 404


async def test_replay_by_filter_counts_and_touches_only_matches(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    dead_31 = await add_events(db, 7, status=EventStatus.DEAD)
    dead_32 = await add_events(db, 2, status=EventStatus.DEAD, company_id=32)
    done = await add_events(db, 2, status=EventStatus.DONE)

    response = await client.post("/admin/events/replay", json={"company_id": 31}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"replayed": 7}
    for event_id in dead_31:
        assert (await load_event(db, event_id)).status is EventStatus.QUEUED
    for event_id in dead_32:
        assert (await load_event(db, event_id)).status is EventStatus.DEAD
    for event_id in done:
        assert (await load_event(db, event_id)).status is EventStatus.DONE

    again = await client.post("/admin/events/replay", json={"company_id": 31}, headers=admin)
    assert again.json() == {"replayed": 0}

    [action] = await audit_rows(db)
    assert action.action == "events_replay"
    assert action.detail is not None
    assert action.detail["count"] == 7
    assert action.detail["filter"]["company_id"] == 31


async def test_replay_by_filter_respects_max_events_and_force(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    await add_events(db, 5, status=EventStatus.DEAD)
    await add_events(db, 2, status=EventStatus.UNSUPPORTED)
    capped = await client.post("/admin/events/replay", json={"max_events": 3}, headers=admin)
    assert capped.json() == {"replayed": 3}

    refused = await client.post(
        "/admin/events/replay", json={"status": ["unsupported"]}, headers=admin
    )
    assert refused.status_code == 409  # as for one event: it needs force
    assert "force" in refused.json()["detail"]
    not_final = await client.post(
        "/admin/events/replay", json={"status": ["queued"], "force": True}, headers=admin
    )
    assert not_final.status_code == 422  # the schema lists the final statuses only
    assert "not final" in not_final.json()["detail"]
    forced = await client.post(
        "/admin/events/replay", json={"status": ["unsupported"], "force": True}, headers=admin
    )
    assert forced.json() == {"replayed": 2}
