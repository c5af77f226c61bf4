"""Delivery to destinations: a runtime on the suite's database, destinations that verify every
delivery with `standardwebhooks` (tests.delivery.receiver), and helpers that change the mirror
the way the pipeline does."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from app.delivery import destinations
from app.delivery.addresses import AddressRules
from app.delivery.schemas import DestinationCreated, DestinationIn
from app.events import mirror
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import make_settings
from tests.delivery.receiver import Destination

DEV_RULES = AddressRules(require_https=False, allow_private=True)
_ids = itertools.count(1)


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


async def add_destination(
    runtime: Runtime, receiver: Destination, **fields: Any
) -> DestinationCreated:
    """A destination pointing at `receiver` (which learns its secret)."""
    starts_at = await destinations.heads(runtime.sessions)
    async with runtime.sessions() as session, session.begin():
        created = await destinations.create(
            session,
            DestinationIn(url=receiver.url, **fields),
            vault=runtime.vault,
            rules=DEV_RULES,
            starts_at=starts_at,
            actor="test",
        )
    receiver.secrets.append(created.secret)
    return created


def snapshot(
    resource_id: int,
    *,
    company_id: int = 31,
    resource_name: str = "RFIs",
    project_id: int | None = 900,
    **data: Any,
) -> mirror.Snapshot:
    now = datetime.now(UTC)
    return mirror.Snapshot(
        company_id=company_id,
        resource_name=resource_name,
        resource_id=resource_id,
        project_id=project_id,
        data={"id": resource_id, "n": next(_ids), **data},
        procore_updated_at=None,
        fetched_at=now,
    )


async def change(runtime: Runtime, snapshots: Sequence[mirror.Snapshot]) -> None:
    async with runtime.sessions() as session, session.begin():
        await mirror.upsert(session, snapshots)


async def delete(runtime: Runtime, resource_id: int, *, company_id: int = 31) -> None:
    async with runtime.sessions() as session, session.begin():
        await mirror.soft_delete(
            session,
            [mirror.Deletion(company_id, "RFIs", resource_id, 900, datetime.now(UTC))],
        )
