"""One simulator per test session on a real port, reset before every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from simulator import SimulatorServer
from tests.simulator.procore import client_credentials_token
from tests.simulator.receiver import Receiver

GENEROUS_LIMITS = {"hourly": 1_000_000, "spike": 1_000_000}


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
async def session_client(simulator: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture
async def api(session_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the simulator, which starts from its seed with limits out of the way."""
    (await session_client.post("/_sim/reset")).raise_for_status()
    (await session_client.put("/_sim/rate_limit", json=GENEROUS_LIMITS)).raise_for_status()
    return session_client


@pytest.fixture
async def token(api: httpx.AsyncClient) -> str:
    """A client-credentials (service account) access token of the default client."""
    return await client_credentials_token(api)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiving = Receiver()
    await receiving.start()
    yield receiving
    await receiving.stop()
