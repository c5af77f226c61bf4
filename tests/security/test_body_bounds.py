"""Every route bounds its body while reading it, before authentication: an unauthenticated
request costs memory proportional to the cap, whatever it declares or sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from starlette.routing import Route

from app.main import ROUTERS, create_app
from app.runtime import Runtime
from app.settings import Settings
from app.webhooks.router import WEBHOOK_PATH
from tests.conftest import ADMIN_TOKEN, make_settings

MIB = 1024 * 1024


def every_route() -> list[tuple[str, str]]:
    """(method, path) of every route, path parameters filled in, the webhook included."""
    routes = [("POST", WEBHOOK_PATH), ("GET", "/openapi.json"), ("GET", "/docs")]
    for route in (r for router in ROUTERS for r in router.routes):
        methods = getattr(route, "methods", None)
        if isinstance(route, Route) and methods:
            path = route.path
            for name in route.param_convertors:
                path = path.replace("{" + name + "}", "1")
            routes += [(method, path) for method in sorted(methods)]
    return routes


async def stored(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        counts = {}
        for table in ("events", "admin_actions", "oauth_states", "resync_runs"):
            counts[table] = (
                await session.execute(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            ).scalar_one()
        return counts


async def test_a_20_mib_body_to_any_route_is_refused_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, db: Runtime
) -> None:
    body = b"[" + b"{}," * (20 * MIB // 3) + b"{}]"
    routes = every_route()
    assert len(routes) > 20
    for method, path in routes:
        for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
            answer = await client.request(
                method,
                path,
                content=body,
                headers={"Content-Type": "application/json", **headers},
            )
            assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
    assert await stored(db) == dict.fromkeys(
        ("events", "admin_actions", "oauth_states", "resync_runs"), 0
    )


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"[" if sent == 0 else b"{}," * (size // 3)
        sent += size


@pytest.mark.parametrize("path", ["/admin/events/replay", "/setup/connect", WEBHOOK_PATH])
async def test_an_undeclared_chunked_body_is_cut_at_the_cap(
    client: httpx.AsyncClient, db: Runtime, path: str, settings: Settings
) -> None:
    headers = {"Content-Type": "application/json"}
    if path == WEBHOOK_PATH:
        headers["Authorization"] = "test-webhook-token-1"
    answer = await client.post(path, content=chunks(20 * MIB), headers=headers)
    assert answer.status_code == 413
    assert "larger than" in answer.json()["detail"]
    assert answer.headers["connection"] == "close"
    assert (await stored(db))["events"] == 0


async def trickle(app: FastAPI, path: str) -> int:
    """Send one byte of body, then nothing; the status the app answers."""
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> MutableMapping[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(3600)  # the client never sends the rest
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"authorization", b"test-webhook-token-1")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return int(sent[0]["status"])


async def test_a_body_that_trickles_is_cut_off(settings: Settings, db: Runtime) -> None:
    quick = make_settings(settings.database_url, body_read_timeout_seconds=0.3)
    app = create_app(quick)
    async with app.router.lifespan_context(app):
        assert await trickle(app, "/admin/events/replay") == 408
        assert await trickle(app, WEBHOOK_PATH) == 408
    assert (await stored(db))["events"] == 0


async def test_validation_errors_are_bounded(client: httpx.AsyncClient, db: Runtime) -> None:
    answer = await client.post(
        "/admin/events/replay",
        json={"status": [{"x": 1}] * 5000},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code == 422
    assert len(answer.content) < 10_000
    assert all("input" not in error for error in answer.json()["detail"])
