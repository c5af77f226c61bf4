"""The destinations' admin API and the live stream: answers, audits, refusals (nothing stored
for a refused body), and the Server-Sent Events resuming after Last-Event-ID."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
from sqlalchemy import text

from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import change, delete, snapshot

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def api(
    db: Runtime, delivery_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """An api client factory: `await api(**settings)` (e.g. app_env="production")."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(**overrides: object) -> httpx.AsyncClient:
            application = create_app(delivery_settings(**overrides))
            await stack.enter_async_context(application.router.lifespan_context(application))
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=application),
                    base_url="http://testserver",
                    headers=AUTH,
                )
            )

        yield build


Api = Callable[..., Awaitable[httpx.AsyncClient]]


async def _count(db: Runtime, table: str) -> int:
    async with db.sessions() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


async def test_create_show_change_and_remove_a_destination_every_change_audited(
    db: Runtime, api: Api
) -> None:
    client = await api()
    created = await client.post(
        "/admin/destinations",
        json={"url": "http://127.0.0.1:9/in?token=abc", "event_types": ["resource.*"]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert (body["state"], body["enabled"], body["event_types"]) == ("open", True, ["resource.*"])
    destination_id = body["id"]

    shown = await client.get(f"/admin/destinations/{destination_id}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json()["behind"] == {"resources": 0, "outbox": 0}
    listed = await client.get("/admin/destinations")
    assert [d["id"] for d in listed.json()] == [destination_id]

    changed = await client.patch(
        f"/admin/destinations/{destination_id}",
        json={"enabled": False, "company_ids": [31, 31], "event_types": None},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["company_ids"]) == (False, [31])
    assert changed.json()["event_types"] is None

    rotated = await client.post(f"/admin/destinations/{destination_id}/rotate-secret", json={})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != body["secret"]
    assert rotated.json()["previous_valid_until"] is not None

    removed = await client.delete(f"/admin/destinations/{destination_id}")
    assert removed.status_code == 204
    assert (await client.get(f"/admin/destinations/{destination_id}")).status_code == 404
    assert (await client.delete(f"/admin/destinations/{destination_id}")).status_code == 404

    async with db.sessions() as session:
        audit = (
            await session.execute(
                text("SELECT action, detail::text FROM admin_actions ORDER BY id")
            )
        ).all()
    assert [a for a, _ in audit] == [
        "destination_create",
        "destination_update",
        "destination_rotate_secret",
        "destination_delete",
    ]
    everything = " ".join(d for _, d in audit)
    assert "whsec_" not in everything, "no secret is ever audited"
    assert "token=abc" not in everything, "nor a URL's query"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/in", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.5/in", "10.0.0.5 is a private address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
        ("https://localhost:8443/in", "the host localhost resolves to"),
        ("https://2852039166/in", "169.254.169.254 is a cloud metadata address"),
        ("http://hooks.example.net/in", "must use https in production"),
    ],
)
async def test_production_refuses_a_destination_that_is_not_public_naming_why(
    db: Runtime, api: Api, url: str, reason: str
) -> None:
    client = await api(app_env="production")
    answer = await client.post("/admin/destinations", json={"url": url})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("url: ")
    assert reason in answer.json()["detail"]
    assert await _count(db, "destinations") == 0
    assert await _count(db, "admin_actions") == 0


async def test_production_refuses_a_change_to_such_a_url_and_keeps_the_old_one(
    db: Runtime, api: Api
) -> None:
    dev = await api()
    created = (await dev.post("/admin/destinations", json={"url": "https://127.0.0.1/in"})).json()
    production = await api(app_env="production")
    answer = await production.patch(
        f"/admin/destinations/{created['id']}", json={"url": "https://10.0.0.5/in"}
    )
    assert answer.status_code == 422
    assert "10.0.0.5 is a private address" in answer.json()["detail"]
    shown = await production.get(f"/admin/destinations/{created['id']}")
    assert shown.json()["url"] == "https://127.0.0.1/in"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"url": "http://127.0.0.1/in", "event_types": ["resource.moved"]}, "event_types: unknown"),
        ({"url": "http://127.0.0.1/in", "resource_names": ["Widgets"]}, "resource_names: unknown"),
        ({"url": "http://127.0.0.1/in", "company_ids": []}, "company_ids: an empty list"),
        ({"url": "mailto:x@example.net"}, "url: the URL must start with https://"),
    ],
)
async def test_bad_filters_are_refused_and_nothing_is_stored(
    db: Runtime, api: Api, body: dict[str, object], detail: str
) -> None:
    client = await api()
    answer = await client.post("/admin/destinations", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(detail)
    assert await _count(db, "destinations") == 0


async def test_unknown_fields_and_missing_auth_are_refused(db: Runtime, api: Api) -> None:
    client = await api()
    extra = await client.post("/admin/destinations", json={"url": "http://x/", "secret": "mine"})
    assert extra.status_code == 422
    bare = await client.get("/admin/destinations", headers={"Authorization": ""})
    assert bare.status_code == 401
    stream = await client.get("/admin/stream", headers={"Authorization": "Bearer wrong"})
    assert stream.status_code == 401
    assert await _count(db, "destinations") == 0


async def test_attempts_and_dead_letters_are_listed_and_replayed(db: Runtime, api: Api) -> None:
    client = await api()
    destination_id = (
        await client.post("/admin/destinations", json={"url": "http://127.0.0.1:9/in"})
    ).json()["id"]
    async with db.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO dead_letters (destination_id, message_id, type, source, position,"
                " body, status, answer) VALUES (:d, 'msg_r5', 'resource.updated', 'resources',"
                " 5, '{\"type\": \"resource.updated\"}', 400, 'no'),"
                " (:d, 'msg_r6', 'resource.updated', 'resources', 6, '{}', 400, 'no')"
            ),
            {"d": destination_id},
        )
        await session.execute(
            text(
                "INSERT INTO delivery_attempts (destination_id, message_id, type, outcome,"
                " status, latency_ms) VALUES (:d, 'msg_r5', 'resource.updated', 'dead', 400, 3)"
            ),
            {"d": destination_id},
        )
    attempts = await client.get(f"/admin/destinations/{destination_id}/attempts")
    assert [a["outcome"] for a in attempts.json()["items"]] == ["dead"]
    letters = (await client.get(f"/admin/destinations/{destination_id}/dead-letters")).json()
    assert [x["message_id"] for x in letters["items"]] == ["msg_r5", "msg_r6"]
    first = letters["items"][0]["id"]
    one = await client.post(f"/admin/destinations/{destination_id}/dead-letters/{first}/replay")
    assert one.status_code == 200
    assert one.json()["replay_requested_at"] is not None
    bulk = await client.post(f"/admin/destinations/{destination_id}/dead-letters/replay")
    assert bulk.json() == {"replayed": 1}, "the one already asked for is not counted twice"
    missing = await client.post(f"/admin/destinations/{destination_id}/dead-letters/999/replay")
    assert missing.status_code == 404
    assert (await client.get("/admin/destinations/999/attempts")).status_code == 404
    # A cursor of another listing is refused by the published pattern (app.cursor).
    for listing in ("attempts", "dead-letters"):
        bad = await client.get(f"/admin/destinations/{destination_id}/{listing}?cursor=gates.1")
        assert bad.status_code == 422, bad.text
        assert "cursor" in bad.text


def _events(raw: str) -> list[dict[str, str]]:
    found = []
    for block in raw.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "id" in fields:
            found.append(fields)
    return found


async def test_the_stream_serves_the_change_feed_and_resumes_after_last_event_id(
    db: Runtime, api: Api
) -> None:
    client = await api(stream_max_seconds=0.5, stream_poll_seconds=0.05)
    await change(db, [snapshot(1), snapshot(2)])
    await delete(db, 1)
    first = await client.get("/admin/stream", params={"since": 0, "include_object": True})
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/event-stream")
    events = _events(first.text)
    assert [e["event"] for e in events] == ["resource.created", "resource.deleted"]
    assert [orjson.loads(e["data"])["data"]["resource_id"] for e in events] == [2, 1]
    assert orjson.loads(events[0]["data"])["data"]["object"]["id"] == 2

    await change(db, [snapshot(2, title="later")])
    resumed = await client.get("/admin/stream", headers={"Last-Event-ID": events[-1]["id"]})
    [again] = _events(resumed.text)
    assert again["event"] == "resource.updated"
    assert int(again["id"]) > int(events[-1]["id"])
    assert "object" not in orjson.loads(again["data"])["data"]

    # Without a position it starts from now: nothing old is sent.
    assert _events((await client.get("/admin/stream")).text) == []
    # Refused as the published schema says (a pattern, an enum): 422 naming the field.
    bad = await client.get("/admin/stream", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["header", "last-event-id"]
    unknown = await client.get("/admin/stream", params={"resource_name": "Widgets"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "resource_name"]


async def test_streams_are_bounded_per_process(db: Runtime, api: Api) -> None:
    client = await api(stream_max_clients=1)
    app = client._transport.app  # type: ignore[attr-defined]
    from app.admin.destinations import _Streams

    app.state.streams = _Streams()
    app.state.streams.open = 1
    answer = await client.get("/admin/stream")
    assert answer.status_code == 503
