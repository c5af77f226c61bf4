"""Valid webhooks with unusual values are stored (raw kept), never refused: every refusal
pauses all of Procore's deliveries to the endpoint (FACTS.md §2)."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from app.models import Event, EventStatus
from app.runtime import Runtime
from tests import payloads
from tests.conftest import WEBHOOK_TOKEN

URL = "/webhooks/procore"


async def post(client: httpx.AsyncClient, content: bytes) -> httpx.Response:
    return await client.post(
        URL,
        content=content,
        headers={"Authorization": WEBHOOK_TOKEN, "Content-Type": "application/json"},
    )


async def only_event(runtime: Runtime) -> Event:
    async with runtime.sessions() as session:
        return (await session.execute(select(Event))).scalar_one()


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59.999999Z",  # the driver's "infinity"
        "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
        "0001-01-01T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "2026-03-02T10:15:30",  # no zone
        "x" * 5000,
        "",
    ],
)
async def test_odd_timestamps_are_stored_without_a_moment(
    client: httpx.AsyncClient, db: Runtime, timestamp: str
) -> None:
    response = await post(client, json.dumps(payloads.v2(timestamp=timestamp)).encode())
    assert response.status_code == 202, response.text
    event = await only_event(db)
    assert event.occurred_at is None
    assert event.raw["timestamp"] == timestamp
    assert event.status is EventStatus.QUEUED


async def test_an_integer_of_thousands_of_digits_is_stored_as_written(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    huge = "9" * 5000  # beyond Python's default 4,300-digit int parsing limit
    body = json.dumps(payloads.v2()).encode()[:-1] + b', "extra": ' + huge.encode() + b"}"
    response = await post(client, body)
    assert response.status_code == 202, response.text
    event = await only_event(db)
    assert event.status is EventStatus.QUEUED
    assert str(event.raw["extra"]) == huge
