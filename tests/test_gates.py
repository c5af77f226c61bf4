"""Gates applied to Postgres: signals, parking, verdicts, release order, expiry, operator actions.

The end-to-end scenarios against the simulator are in tests/test_gate_scenarios.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from app.gates import scopes, transitions
from app.gates import service as gates
from app.gates.policy import Diagnosis
from app.gates.scopes import Scope, Work
from app.models import Credential, CredentialKind, Event, EventStatus, Gate, GateScope, GateState
from app.procore.answers import Outcome, OutcomeKind
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import make_settings

NOT_CONNECTED = Outcome(OutcomeKind.NOT_INSTALLED, 403, "App is not connected to this company.")
FORBIDDEN = Outcome(OutcomeKind.FORBIDDEN, 403, "You do not have permission")
OK = Outcome(OutcomeKind.OK, 200)


def outcome(
    company: int,
    result: Outcome,
    project: int | None = None,
    cred: int | None = 1,
    resource: str = "RFIs",
) -> gates.ScopeOutcome:
    return gates.ScopeOutcome(
        Work(company, project, resource, cred), result, f"/rest/v1.0/x/{company}"
    )


async def record(runtime: Runtime, *items: gates.ScopeOutcome) -> None:
    async with runtime.sessions() as session, session.begin():
        await gates.record_outcomes(session, runtime.settings, items)


async def gate(runtime: Runtime, key: str) -> Gate | None:
    async with runtime.sessions() as session:
        return (await session.execute(select(Gate).where(Gate.scope_key == key))).scalar()


async def verdict(
    runtime: Runtime, company: int, project: int | None = None, cred: int = 1
) -> gates.GateVerdict:
    async with runtime.sessions() as session:
        return await gates.verdict(session, Work(company, project, "RFIs", cred))


async def test_signals_below_threshold_leave_the_gate_suspect_and_open(db: Runtime) -> None:
    await record(db, outcome(7, NOT_CONNECTED), outcome(7, NOT_CONNECTED))
    row = await gate(db, "company:7")
    assert row is not None
    assert (row.state, row.signals) == (GateState.SUSPECT, 2)
    assert (await verdict(db, 7)).open


async def test_threshold_signals_park_the_company_pending_diagnosis(db: Runtime) -> None:
    await record(db, *(outcome(7, NOT_CONNECTED) for _ in range(3)))
    row = await gate(db, "company:7")
    assert row is not None
    assert row.state is GateState.PARKED
    assert row.diagnosis == Diagnosis.PENDING
    assert row.last_status == 403
    assert row.body_excerpt == "App is not connected to this company."
    assert row.next_probe_at is not None
    assert row.next_probe_at <= datetime.now(UTC)  # diagnosed at the next tick
    answer = await verdict(db, 7, project=900)
    assert not answer.open
    assert answer.gate_id == row.id
    # Other companies are untouched.
    assert (await verdict(db, 8)).open


async def test_success_resets_a_suspect_gate(db: Runtime) -> None:
    await record(db, outcome(7, NOT_CONNECTED), outcome(7, NOT_CONNECTED))
    await record(db, outcome(7, OK, project=900))
    row = await gate(db, "company:7")
    assert row is not None
    assert (row.state, row.signals) == (GateState.OPEN, 0)
    await record(db, outcome(7, NOT_CONNECTED), outcome(7, NOT_CONNECTED))
    row = await gate(db, "company:7")
    assert row is not None
    assert row.state is GateState.SUSPECT


async def test_a_403_in_a_project_parks_only_that_tool_there_until_diagnosed(
    db: Runtime,
) -> None:
    """FACTS.md §6: a 403 on a tool in a project parks the narrowest scope it was seen in;
    the diagnosis widens it."""
    await record(db, *(outcome(4, FORBIDDEN, project=2) for _ in range(3)))
    held = await gate(db, "project_tool:4:2:RFIs")
    assert held is not None
    assert held.state is GateState.PARKED
    assert held.resource_name == "RFIs"
    assert not (await verdict(db, 4, project=2)).open
    assert (await verdict(db, 4, project=1)).open
    async with db.sessions() as session:
        assert (await gates.verdict(session, Work(4, 2, "Submittals", 1))).open
    assert await gate(db, "company:4") is None
    assert await gate(db, "project:4:2") is None


async def add_credentials(runtime: Runtime, *ids: int) -> None:
    async with runtime.sessions() as session, session.begin():
        for credential_id in ids:
            session.add(
                Credential(
                    id=credential_id,
                    kind=CredentialKind.AUTHORIZATION_CODE,
                    label=f"user {credential_id}",
                    client_id="test-client",
                )
            )


async def test_lost_refresh_parks_the_credential_at_once(db: Runtime) -> None:
    await add_credentials(db, 5)
    reauth = Outcome(OutcomeKind.UNAUTHORIZED, None, "credential 5 needs re-authorization")
    await record(db, outcome(7, reauth, cred=5))
    row = await gate(db, "credential:5")
    assert row is not None
    assert row.state is GateState.PARKED
    assert row.diagnosis == Diagnosis.CREDENTIAL_INVALID
    assert row.remediation is not None
    assert "re-authenticate" in row.remediation
    assert not (await verdict(db, 7, cred=5)).open
    assert not (await verdict(db, 99, cred=5)).open  # every company the credential serves
    assert await gate(db, "company:7") is None


async def _add_events(runtime: Runtime, company: int, count: int, **fields: object) -> list[str]:
    keys = sorted(payloads.new_ulid() for _ in range(count))
    async with runtime.sessions() as session, session.begin():
        # Inserted out of ULID order, so release order cannot come from insertion order.
        for key in reversed(keys):
            session.add(
                Event(
                    dedupe_key=key,
                    payload_version="v2",
                    company_id=company,
                    **{"project_id": 1, "resource_name": "RFIs", **fields},
                    resource_id=1,
                    event_type="update",
                    raw={},
                    status=EventStatus.PARKED,
                )
            )
    return keys


async def test_release_of_an_opened_gate_goes_in_ulid_order_and_in_paced_batches(
    settings: Settings, db: Runtime
) -> None:
    runtime = open_runtime(make_settings(settings.database_url, release_batch_size=4), name="t")
    try:
        await record(runtime, *(outcome(7, NOT_CONNECTED) for _ in range(3)))
        row = await gate(runtime, "company:7")
        assert row is not None
        keys = await _add_events(runtime, 7, 10, gate_id=row.id)

        # Parked: nothing leaves.
        assert await gates.release_opened(runtime) == 0

        await record(runtime, outcome(7, OK))  # a success opens it
        assert await gates.release_opened(runtime) == 4
        # The next batch waits until the company's released work has drained.
        assert await gates.release_opened(runtime) == 0
        async with runtime.sessions() as session:
            queued = (
                await session.execute(
                    select(Event.dedupe_key)
                    .where(Event.status == EventStatus.QUEUED)
                    .order_by(Event.next_attempt_at, Event.id)
                )
            ).scalars()
            assert list(queued) == keys[:4]
        async with runtime.sessions() as session, session.begin():
            await session.execute(
                update(Event).where(Event.status == EventStatus.QUEUED).values(status="done")
            )
        assert await gates.release_opened(runtime) == 4
        async with runtime.sessions() as session, session.begin():
            await session.execute(
                update(Event).where(Event.status == EventStatus.QUEUED).values(status="done")
            )
        assert await gates.release_opened(runtime) == 2
        async with runtime.sessions() as session:
            parked = (
                await session.execute(text("SELECT count(*) FROM events WHERE status = 'parked'"))
            ).scalar_one()
        assert parked == 0
    finally:
        await runtime.close()


async def test_parked_events_expire_after_retention(db: Runtime) -> None:
    old = datetime.now(UTC) - timedelta(days=15)
    await _add_events(db, 7, 3, received_at=old)
    fresh = await _add_events(db, 7, 2)
    assert await gates.expire_parked(db) == 3
    async with db.sessions() as session:
        rows = (
            await session.execute(select(Event.dedupe_key, Event.status, Event.last_error))
        ).all()
    dead = [r for r in rows if r.status is EventStatus.DEAD]
    assert len(dead) == 3
    assert {r.last_error for r in dead} == {"expired_while_parked"}
    assert {r.dedupe_key for r in rows if r.status is EventStatus.PARKED} == set(fresh)


async def test_operator_park_holds_against_successes_and_unpark_opens(db: Runtime) -> None:
    await record(db, outcome(7, OK))
    async with db.sessions() as session, session.begin():
        await transitions.ensure(session, Scope(GateScope.COMPANY, 7))
        gate_id = (
            await session.execute(text("SELECT id FROM gates WHERE scope_key = 'company:7'"))
        ).scalar_one()
        assert await gates.operator_park(session, gate_id, reason="maintenance window")
        assert not await gates.operator_park(session, 999_999, reason="none")
    assert not (await verdict(db, 7)).open
    await record(db, outcome(7, OK))  # a stray success does not undo an operator's park
    assert not (await verdict(db, 7)).open
    async with db.sessions() as session, session.begin():
        assert await gates.operator_unpark(
            session, gate_id, reason="done", threshold=db.settings.update_pending_projects
        )
    assert (await verdict(db, 7)).open


async def test_connect_opens_company_and_credential_gates(db: Runtime) -> None:
    await add_credentials(db, 5, 6)
    reauth = Outcome(OutcomeKind.UNAUTHORIZED, None, "needs re-authorization")
    await record(db, outcome(7, reauth, cred=5), *(outcome(8, NOT_CONNECTED) for _ in range(3)))
    cred_gate = await gate(db, "credential:5")
    assert cred_gate is not None
    await _add_events(db, 7, 2, gate_id=cred_gate.id)
    async with db.sessions() as session, session.begin():
        await gates.connected(session, credential_id=6, company_ids=[7, 8])
    assert (await verdict(db, 8)).open
    # The old credential's gate held company 7's events: the new connection releases them.
    assert (await verdict(db, 7, cred=6)).open
    row = await gate(db, "credential:5")
    assert row is not None
    assert row.state is GateState.OPEN


async def test_concurrent_signals_count_every_one(db: Runtime) -> None:
    async def one() -> None:
        await record(db, outcome(9, FORBIDDEN))

    await asyncio.gather(*(one() for _ in range(2)))
    row = await gate(db, "tool:9:RFIs")
    assert row is not None
    assert row.signals == 2


WORKS = [
    Work(7),
    Work(7, credential_id=3),
    Work(7, 900),
    Work(7, 900, "Submittals", 3),
    Work(7, None, "Company Users", 3),
]


async def test_the_sql_keys_are_the_python_keys(db: Runtime) -> None:
    """The receiver's insert and the hand-offs decide in SQL: the same keys, in the same
    order (broadest first), as the workers' verdicts."""
    sql = text(
        "SELECT "
        + scopes.keys_sql(
            credential="CAST(:cred AS bigint)",
            company="CAST(:company AS bigint)",
            project="CAST(:project AS bigint)",
            resource="CAST(:resource AS text)",
        )
    )
    async with db.sessions() as session:
        for work in WORKS:
            found = (
                await session.execute(
                    sql,
                    {
                        "cred": work.credential_id,
                        "company": work.company_id,
                        "project": work.project_id,
                        "resource": work.resource_name,
                    },
                )
            ).scalar_one()
            assert found == scopes.keys(work), work


async def test_the_broadest_parked_gate_is_the_one_that_holds(db: Runtime) -> None:
    await record(db, *(outcome(7, FORBIDDEN, project=900) for _ in range(3)))
    project_gate = await gate(db, "project_tool:7:900:RFIs")
    assert project_gate is not None
    assert project_gate.state is GateState.PARKED
    held = await verdict(db, 7, 900)
    assert not held.open
    assert held.gate_id == project_gate.id
    await record(db, *(outcome(7, NOT_CONNECTED) for _ in range(3)))
    company_gate = await gate(db, "company:7")
    assert company_gate is not None
    assert (await verdict(db, 7, 900)).gate_id == company_gate.id
    assert (await verdict(db, 7, 901)).gate_id == company_gate.id


async def test_a_parent_holds_its_children_and_a_child_releases_alone(db: Runtime) -> None:
    """Submittals parked in projects 900 and 901, then company-wide: the tool's gate holds
    every Submittals of the company (RFIs flow); opening one child releases its own events,
    never its sibling's."""
    for project in (900, 901):
        await record(db, *(outcome(7, FORBIDDEN, project, resource="Submittals") for _ in range(3)))
    children = [await gate(db, f"project_tool:7:{p}:Submittals") for p in (900, 901)]
    assert all(c is not None and c.state is GateState.PARKED for c in children)
    first, second = (c.id for c in children if c is not None)
    await _add_events(db, 7, 3, project_id=900, resource_name="Submittals", gate_id=first)
    await _add_events(db, 7, 2, project_id=901, resource_name="Submittals", gate_id=second)

    await record(db, *(outcome(7, FORBIDDEN, resource="Submittals") for _ in range(3)))
    tool = await gate(db, "tool:7:Submittals")
    assert tool is not None
    assert tool.state is GateState.PARKED
    async with db.sessions() as session:
        for project in (900, 901, 902):
            held = await gates.verdict(session, Work(7, project, "Submittals", 1))
            assert held.gate_id == tool.id
            assert (await gates.verdict(session, Work(7, project, "RFIs", 1))).open

    async with db.sessions() as session, session.begin():
        assert await gates.operator_unpark(
            session, first, reason="tool enabled in 900", threshold=3
        )
    assert await gates.release_opened(db) == 3
    async with db.sessions() as session:
        left = (
            await session.execute(
                text("SELECT gate_id, count(*) FROM events WHERE status = 'parked' GROUP BY 1")
            )
        ).all()
    assert [(g, n) for g, n in left] == [(second, 2)]


async def _dormant_company_gate(runtime: Runtime, company: int) -> int:
    await record(runtime, *(outcome(company, NOT_CONNECTED) for _ in range(3)))
    async with runtime.sessions() as session, session.begin():
        return int(
            (
                await session.execute(
                    text(
                        "UPDATE gates SET dormant_since = now() - interval '1 hour',"
                        " next_probe_at = NULL, last_probe_at = now() - interval '2 hours'"
                        " WHERE scope_key = :k RETURNING id"
                    ),
                    {"k": f"company:{company}"},
                )
            ).scalar_one()
        )


async def _transitions(runtime: Runtime) -> list[tuple[str, str]]:
    async with runtime.sessions() as session:
        rows = await session.execute(text("SELECT kind, detail->>'by' FROM gate_transitions"))
        return [(str(k), str(b)) for k, b in rows.all()]


async def test_a_webhook_wakes_a_dormant_gate_once_per_probe_cap(db: Runtime) -> None:
    gate_id = await _dormant_company_gate(db, 7)
    assert await gates.wake_on_webhooks(db) == 0  # nothing new: it sleeps on
    await _add_events(db, 7, 2, gate_id=gate_id)  # parked by the receiver, after it slept
    assert await gates.wake_on_webhooks(db) == 1
    row = await gate(db, "company:7")
    assert row is not None
    assert row.dormant_since is None
    assert row.woken_at is not None
    assert row.next_probe_at is not None
    assert ("woken", "webhook") in await _transitions(db)

    # Its probe failed a moment ago and it sleeps again: more webhooks within the probe cap
    # are no reason to ask Procore again.
    async with db.sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE gates SET dormant_since = now() - interval '1 second',"
                " next_probe_at = NULL, woken_at = NULL, last_probe_at = now() WHERE id = :id"
            ),
            {"id": gate_id},
        )
    await _add_events(db, 7, 1, gate_id=gate_id)
    assert await gates.wake_on_webhooks(db) == 0


async def test_the_companies_sweep_wakes_the_listed_companies_only(db: Runtime) -> None:
    await _dormant_company_gate(db, 7)
    await _dormant_company_gate(db, 8)
    async with db.sessions() as session, session.begin():
        assert await gates.companies_installed(session, db.settings, [8, 9]) == 1
    woken, sleeping = await gate(db, "company:8"), await gate(db, "company:7")
    assert woken is not None
    assert sleeping is not None
    assert woken.dormant_since is None
    assert sleeping.dormant_since is not None
    assert ("woken", "companies_sweep") in await _transitions(db)
