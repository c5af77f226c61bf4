"""A bounded, deterministic slice of the schemathesis run (tests/proof/test_schemathesis.py
runs the long one): the api on a real port against the simulator, every operation but the
webhook, all checks and phases, a few derandomized examples each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from app.runtime import Runtime
from app.settings import Settings
from tests import schema_fuzz
from tests.conftest import ADMIN_TOKEN
from tests.subscriptions.conftest import free_port, serving_api


async def test_schemathesis_finds_nothing_in_a_deterministic_slice(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings]
) -> None:
    settings = pipeline_settings()
    async with serving_api(settings, free_port()) as base:
        result = await asyncio.to_thread(
            schema_fuzz.run, base, ADMIN_TOKEN, examples=5, seed=1, deterministic=True
        )
    assert "Stateful" in result.stdout
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
