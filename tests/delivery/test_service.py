"""Delivery rounds against a real destination on a loopback port, which verifies every
delivery with the Standard Webhooks reference library."""

from __future__ import annotations

from app.delivery import service
from app.runtime import Runtime
from tests.delivery.conftest import add_destination, change, delete, snapshot
from tests.delivery.receiver import Destination


async def test_changes_are_delivered_signed_in_change_order(
    drt: Runtime, destination: Destination
) -> None:
    created = await add_destination(drt, destination)
    await change(drt, [snapshot(1), snapshot(2)])
    await change(drt, [snapshot(1, title="again")])
    await delete(drt, 2)

    # The feed holds each resource's newest state once: 1 (changed twice) and 2 (deleted).
    assert await service.deliver(drt, created.id) == 2

    got = destination.delivered()
    assert destination.unverified == []
    assert [(d.type, d.data["resource_id"]) for d in got] == [
        ("resource.created", 1),  # new to the destination, though changed twice since
        ("resource.deleted", 2),
    ]
    assert got[0].data["change_seq"] < got[1].data["change_seq"]
    assert "object" not in got[0].data  # include_object is off
    assert all(d.signatures[0].startswith("v1,") for d in got)

    await change(drt, [snapshot(1, title="third")])
    assert await service.deliver(drt, created.id) == 1
    [last] = destination.delivered()[2:]
    assert (last.type, last.data["resource_id"]) == ("resource.updated", 1)
    assert last.data["change_seq"] > got[1].data["change_seq"]
