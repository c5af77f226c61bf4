"""Delivery to destinations: a runtime on the suite's database, destinations that verify every
delivery with `standardwebhooks` (tests.delivery.receiver), and helpers that change the mirror
the way the pipeline does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import make_settings
from tests.delivery.receiver import Destination


@pytest.fixture
def delivery_settings(database_url: str) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "delivery_retry_base_seconds": 0.05,
            "delivery_retry_cap_seconds": 0.2,
            "delivery_probe_base_seconds": 0.2,
            "delivery_probe_cap_seconds": 0.8,
            "delivery_timeout_seconds": 2.0,
            "delivery_lease_seconds": 10.0,
            # Rounds end when nothing is left (the workers' default lingers a moment).
            "delivery_linger_seconds": 0.0,
        }
        values.update(overrides)
        return make_settings(database_url, **values)

    return build


@pytest.fixture
async def drt(db: Runtime, delivery_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    """A runtime with the short delivery timings, over empty tables."""
    runtime = open_runtime(delivery_settings(), name="procore-hooks-delivery-tests")
    yield runtime
    await runtime.close()


@pytest.fixture
async def destination() -> AsyncIterator[Destination]:
    async with Destination() as receiver:
        yield receiver
