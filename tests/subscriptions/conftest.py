"""Subscriptions and resync end to end: the pipeline's simulator fixtures, empty tables, and
the api served on a real port so the simulator's hooks can deliver to it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from app.runtime import Runtime
from app.settings import Settings


@pytest.fixture
async def clean(db: Runtime, redis: Any) -> Runtime:
    """Empty tables (ours included, see tests.conftest.TABLES) and an empty Redis namespace."""
    return db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving_api(settings: Settings, port: int) -> AsyncIterator[str]:
    """The api app on 127.0.0.1:`port` in this event loop; yields its base URL."""
    from app.main import create_app

    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def sim_webhooks(sim: httpx.AsyncClient) -> dict[str, Any]:
    answer = await sim.get("/_sim/webhooks")
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found
