"""An event that makes processing fail on a defect (not on Postgres, Redis or the network)
ends `dead` with the error, alone; its batch-mates are processed; nothing loops forever."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.events import service
from app.runtime import Runtime
from tests.factories import Spec, store_events

POISON = 5151


async def rows(runtime: Runtime) -> dict[int, Any]:
    async with runtime.sessions() as session:
        found = await session.execute(
            text("SELECT resource_id, status, last_error, finished_at, locked_until FROM events")
        )
        return {r.resource_id: r for r in found}


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serving RFI 5151 hits a defect, every time."""
    serve = service._serve

    async def failing(runtime: Runtime, target: service.Target, *args: Any) -> None:
        if target.resource_id == POISON:
            raise KeyError("no such field")
        await serve(runtime, target, *args)

    monkeypatch.setattr(service, "_serve", failing)


@pytest.mark.usefixtures("poisoned", "sim")
async def test_a_poison_event_ends_dead_alone_and_its_batch_mates_are_served(
    prt: Runtime,
) -> None:
    ids = await store_events(
        prt, [Spec("RFIs", 5150), Spec("RFIs", POISON), Spec("RFIs", 5152, project_id=901)]
    )
    assert await service.process_batch(prt, ids) == 3

    found = await rows(prt)
    assert found[5150].status == "done"
    assert found[5152].status == "done"
    poison = found[POISON]
    assert poison.status == "dead"
    assert poison.last_error == "internal error: KeyError: 'no such field'"
    assert poison.finished_at is not None
    assert poison.locked_until is None
    # Final: no later job takes it again (an operator replays it once the defect is fixed).
    assert await service.process_batch(prt, ids) == 0


@pytest.mark.usefixtures("poisoned", "sim")
async def test_an_infrastructure_failure_is_not_taken_for_a_poison_event(
    prt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await store_events(prt, [Spec("RFIs", 5150)])

    async def postgres_gone(*args: Any) -> None:
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(service, "_serve", postgres_gone)
    with pytest.raises(ConnectionResetError):
        await service.process_batch(prt, ids)
    # The event waits for its lease, as after a crash: retried, never written off.
    event = (await rows(prt))[5150]
    assert event.status == "processing"
    assert event.last_error is None
