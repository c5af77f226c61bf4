"""The same generated histories through the pure policy and through the SQL store.

The rules that must run in SQL (conditional updates under concurrent workers, the release
order, the expiry) are written once in `app.gates.policy`; these tests drive the production
writers (`record_outcomes`, `probes.apply_finding`, `release_opened`, `expire_parked`) and the
pure functions with the same inputs, and compare what they decide.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.gates import policy, probes
from app.gates import service as gates
from app.gates.diagnosis import Finding
from app.gates.policy import Action, Diagnosis, GateView
from app.gates.scopes import Work
from app.models import EventStatus, GateScope, GateState
from app.procore.answers import Outcome, OutcomeKind
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import TABLES, make_settings

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOT_CONNECTED = Outcome(OutcomeKind.NOT_INSTALLED, 403, "App is not connected to this company.")
OK = Outcome(OutcomeKind.OK, 200)
WORK = Work(7, 900, "RFIs", None)
STILL_CLOSED = Finding(Diagnosis.NOT_INSTALLED, GateScope.COMPANY, 403, "not connected")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("signal"), st.integers(1, 4), st.integers(0, 900)),
        st.tuples(st.just("success"), st.just(1), st.integers(0, 900)),
        st.tuples(st.just("probe_failed"), st.just(1), st.integers(0, 900)),
    ),
    max_size=14,
)


def _run(
    database_url: str, body: Callable[[Runtime], Awaitable[None]], **overrides: object
) -> None:
    async def main() -> None:
        runtime = open_runtime(make_settings(database_url, **overrides), name="properties")
        try:
            async with runtime.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            await body(runtime)
        finally:
            await runtime.close()

    asyncio.run(main())


async def _company_gate(runtime: Runtime) -> Any:
    async with runtime.sessions() as session:
        return (
            await session.execute(text("SELECT * FROM gates WHERE scope_key = 'company:7'"))
        ).first()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps, threshold=st.integers(1, 4))
def test_signals_successes_and_probes_decide_as_the_policy_does(
    settings: Settings, history: list[tuple[str, int, int]], threshold: int
) -> None:
    async def body(runtime: Runtime) -> None:
        rules = policy.from_settings(runtime.settings)
        model, now = GateView(), T0
        probed_at = now
        for kind, count, seconds in history:
            now += timedelta(seconds=seconds)
            if kind == "signal":
                async with runtime.sessions() as session, session.begin():
                    await gates.record_outcomes(
                        session,
                        runtime.settings,
                        [gates.ScopeOutcome(WORK, NOT_CONNECTED) for _ in range(count)],
                        now=now,
                    )
                for _ in range(count):
                    decision = policy.on_signal(model, now, rules)
                    model = decision.gate
                    if Action.DIAGNOSE in decision.actions:
                        model = policy.park(model, now, rules, random.Random(), pending=True)
                        break
            elif kind == "success":
                async with runtime.sessions() as session, session.begin():
                    await gates.record_outcomes(
                        session, runtime.settings, [gates.ScopeOutcome(WORK, OK)], now=now
                    )
                model = policy.on_success(model).gate
            elif model.state is GateState.PARKED:
                async with runtime.sessions() as session, session.begin():
                    row = (
                        await session.execute(
                            probes._LEASE_ONE,
                            {"id": (await _company_gate(runtime)).id, "lease": 60},
                        )
                    ).one()
                    await probes.apply_finding(
                        session, runtime.settings, row, STILL_CLOSED, credential_id=None, now=now
                    )
                model = policy.on_probe_failure(model, now, rules, random.Random())
                probed_at = now
            stored = await _company_gate(runtime)
            if stored is None:
                assert model == GateView()
                continue
            assert GateState(stored.state) is model.state
            assert stored.signals == model.signals
            assert stored.window_started_at == model.window_started_at
            assert stored.probe_attempt == model.probe_attempt
            assert (stored.dormant_since is None) is (model.dormant_since is None)
            if model.dormant_since is not None:
                assert stored.next_probe_at is None  # dormant: no probe until woken
            elif model.state is GateState.PARKED:
                # The delay is jittered: the store's lies where the policy's may.
                assert stored.next_probe_at is not None
                if model.probe_attempt == 0:
                    assert stored.next_probe_at == stored.parked_at  # diagnosis at once
                else:
                    wait = (stored.next_probe_at - probed_at).total_seconds()
                    low = policy.probe_floor(model.probe_attempt, rules)
                    high = policy.probe_ceiling(model.probe_attempt, rules)
                    assert low - 1e-3 <= wait <= high + 1e-3
            async with runtime.sessions() as session:
                held = await gates.verdict(session, WORK)
            assert held.open is (model.state is not GateState.PARKED)

    _run(settings.database_url, body, park_threshold=threshold)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(0, 30), batch=st.integers(1, 8), seed=st.integers())
def test_release_leaves_in_the_order_and_batches_the_policy_gives(
    settings: Settings, count: int, batch: int, seed: int
) -> None:
    async def body(runtime: Runtime) -> None:
        keys = sorted(payloads.new_ulid() for _ in range(count))
        shuffled = list(keys)
        random.Random(seed).shuffle(shuffled)
        async with runtime.sessions() as session, session.begin():
            gate_id = (
                await session.execute(
                    text(
                        "INSERT INTO gates (scope_key, scope, company_id, state, opened_at)"
                        " VALUES ('company:7', 'company', 7, 'open', now()) RETURNING id"
                    )
                )
            ).scalar_one()
            for key in shuffled:
                await session.execute(
                    text(
                        "INSERT INTO events (dedupe_key, payload_version, company_id,"
                        " resource_name, resource_id, event_type, raw, status, gate_id)"
                        " VALUES (:k, 'v2', 7, 'RFIs', 1, 'update', '{}', 'parked', :g)"
                    ),
                    {"k": key, "g": gate_id},
                )
        released: list[list[str]] = []
        while await gates.release_opened(runtime):
            async with runtime.sessions() as session, session.begin():
                rows = await session.execute(
                    text(
                        "UPDATE events SET status = 'done' WHERE status = 'queued'"
                        " RETURNING dedupe_key, next_attempt_at"
                    )
                )
                released.append([k for k, _ in sorted(rows.all(), key=lambda r: r[1])])
        assert released == policy.release_batches(keys, batch)

    _run(settings.database_url, body, release_batch_size=batch)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ages_h=st.lists(st.integers(0, 60 * 24), max_size=20), days=st.integers(1, 30))
def test_expiry_takes_what_the_policy_calls_expired(
    settings: Settings, ages_h: list[int], days: int
) -> None:
    async def body(runtime: Runtime) -> None:
        rules = policy.from_settings(runtime.settings)
        now = datetime.now(UTC)
        # Whole hours and a minute's margin: the database's clock and ours differ by a moment.
        received = [now - timedelta(hours=h, minutes=1 if h % 2 else -1) for h in ages_h]
        async with runtime.sessions() as session, session.begin():
            for i, at in enumerate(received):
                await session.execute(
                    text(
                        "INSERT INTO events (dedupe_key, payload_version, company_id,"
                        " resource_name, resource_id, event_type, raw, status, received_at)"
                        " VALUES (:k, 'v2', 7, 'RFIs', 1, 'update', '{}', 'parked', :at)"
                    ),
                    {"k": f"e{i}", "at": at},
                )
        await gates.expire_parked(runtime)
        async with runtime.sessions() as session:
            dead = set(
                (
                    await session.execute(
                        text("SELECT dedupe_key FROM events WHERE status = :s"),
                        {"s": EventStatus.DEAD.value},
                    )
                ).scalars()
            )
        expected = {f"e{i}" for i, at in enumerate(received) if policy.expired(at, now, rules)}
        assert dead == expected

    _run(settings.database_url, body, parked_retention_days=days)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gates_=st.lists(
        st.tuples(
            st.sampled_from(list(GateState)),
            st.one_of(st.none(), st.integers(-600, 600).filter(lambda m: abs(m) > 1)),
        ),
        max_size=12,
    )
)
def test_the_probe_lease_takes_what_the_policy_calls_due(
    settings: Settings, gates_: list[tuple[GateState, int | None]]
) -> None:
    async def body(runtime: Runtime) -> None:
        now = datetime.now(UTC)
        views: dict[str, GateView] = {}
        async with runtime.sessions() as session, session.begin():
            for i, (state, minutes) in enumerate(gates_):
                due = None if minutes is None else now + timedelta(minutes=minutes)
                views[f"company:{i}"] = GateView(state=state, next_probe_at=due)
                await session.execute(
                    text(
                        "INSERT INTO gates (scope_key, scope, company_id, state, next_probe_at)"
                        " VALUES (:k, 'company', :c, :s, :due)"
                    ),
                    {"k": f"company:{i}", "c": i, "s": state.value, "due": due},
                )
            leased = {
                str(r.scope_key)
                for r in await session.execute(probes._LEASE_DUE, {"lease": 60, "limit": 100})
            }
        assert leased == {k for k, v in views.items() if policy.probe_due(v, now)}

    _run(settings.database_url, body)
