"""The gates' transitions as data: appended by the writers in the transaction of the change,
read by cursor through GET /admin/gate-transitions and by downstream delivery (app.feed)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.feed import sources
from app.feed.messages import GATE_KINDS, Source
from app.gates import service as gates
from app.gates.policy import Transition
from app.gates.scopes import Work
from app.procore.answers import Outcome, OutcomeKind
from app.runtime import Runtime

NOT_CONNECTED = Outcome(OutcomeKind.NOT_INSTALLED, 403, "App is not connected to this company.")
OK = Outcome(OutcomeKind.OK, 200)


async def _record(db: Runtime, company: int, outcome: Outcome, times: int = 1) -> None:
    async with db.sessions() as session, session.begin():
        await gates.record_outcomes(
            session,
            db.settings,
            [gates.ScopeOutcome(Work(company, 900, "RFIs", None), outcome) for _ in range(times)],
        )


async def _park_and_open(db: Runtime, company: int) -> None:
    await _record(db, company, NOT_CONNECTED, times=db.settings.park_threshold)
    async with db.sessions() as session:
        gate_id = (
            await session.execute(
                text("SELECT id FROM gates WHERE scope_key = :k"), {"k": f"company:{company}"}
            )
        ).scalar_one()
    async with db.sessions() as session, session.begin():
        assert await gates.operator_unpark(
            session, gate_id, reason="installed, checked by hand", threshold=3
        )


async def test_each_transition_is_one_row_readable_by_cursor(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    await _park_and_open(db, 31)
    await _park_and_open(db, 32)
    # A success on an open gate, and signals below the threshold, are no transitions.
    await _record(db, 31, OK)
    await _record(db, 33, NOT_CONNECTED)

    first = await client.get("/admin/gate-transitions", params={"limit": 3}, headers=admin)
    assert first.status_code == 200
    body = first.json()
    assert [(t["kind"], t["company_id"]) for t in body["items"]] == [
        ("parked", 31),
        ("released", 31),
        ("parked", 32),
    ]
    parked = body["items"][0]
    assert parked["scope_key"] == "company:31"
    assert parked["diagnosis"] == "pending"
    assert parked["detail"] == {"by": "policy", "status": 403}
    assert body["items"][1]["detail"] == {"by": "operator", "note": "installed, checked by hand"}
    assert body["has_more"] is True

    rest = await client.get(
        "/admin/gate-transitions", params={"since": body["next_cursor"]}, headers=admin
    )
    assert [t["kind"] for t in rest.json()["items"]] == ["released"]
    assert rest.json()["has_more"] is False
    again = await client.get(
        "/admin/gate-transitions", params={"since": rest.json()["next_cursor"]}, headers=admin
    )
    assert again.json()["items"] == []

    only = await client.get("/admin/gate-transitions", params={"company_id": 32}, headers=admin)
    assert {t["company_id"] for t in only.json()["items"]} == {32}


async def test_a_cursor_of_another_listing_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    answer = await client.get("/admin/gate-transitions", params={"since": "gates.4"}, headers=admin)
    assert answer.status_code == 422


async def test_downstream_delivery_reads_the_same_transitions(db: Runtime) -> None:
    await _park_and_open(db, 31)
    batch = await sources.read(db.sessions, Source.GATES, 0, 10, sources.Interest())
    assert [m.type for m in batch.messages] == ["gate.parked", "gate.released"]
    assert batch.messages[0].ordering_key == batch.messages[1].ordering_key
    assert batch.messages[0].data["remediation"].startswith("checking which access")


async def test_transitions_cannot_be_changed_or_removed(db: Runtime) -> None:
    await _park_and_open(db, 31)
    for statement in ("UPDATE gate_transitions SET kind = 'x'", "DELETE FROM gate_transitions"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.sessions() as session, session.begin():
                await session.execute(text(statement))


def test_the_feed_publishes_every_kind_of_transition() -> None:
    assert set(GATE_KINDS) == {t.value for t in Transition}
