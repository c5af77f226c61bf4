"""The pure gate rules, with property tests (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.gates.policy import (
    Action,
    GateView,
    Policy,
    decay,
    expired,
    on_probe_failure,
    on_signal,
    on_success,
    park,
    probe_ceiling,
    probe_delay,
    probe_due,
    probe_floor,
    release_batches,
    wake,
)
from app.models import GateState

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

policies = st.builds(
    Policy,
    threshold=st.integers(1, 10),
    window=st.timedeltas(timedelta(seconds=1), timedelta(hours=2)),
    probe_base_s=st.floats(0.01, 600),
    probe_cap_s=st.floats(0.01, 86_400),
    retention=st.timedeltas(timedelta(hours=1), timedelta(days=30)),
    release_batch=st.integers(1, 1000),
    dormant_after=st.timedeltas(timedelta(seconds=1), timedelta(days=2)),
)


@given(policy=policies, attempt=st.integers(0, 10_000), seed=st.integers())
def test_probe_delay_stays_between_floor_and_cap(policy: Policy, attempt: int, seed: int) -> None:
    delay = probe_delay(attempt, policy, random.Random(seed))
    assert probe_floor(attempt, policy) <= delay <= probe_ceiling(attempt, policy)
    assert delay <= policy.probe_cap_s
    assert delay >= min(policy.probe_cap_s, policy.probe_base_s) / 2


@given(policy=policies, attempt=st.integers(0, 60))
def test_probe_ceiling_grows_until_the_cap(policy: Policy, attempt: int) -> None:
    assert probe_ceiling(attempt + 1, policy) >= probe_ceiling(attempt, policy)
    expected = min(policy.probe_cap_s, policy.probe_base_s * 2**attempt)
    assert abs(probe_ceiling(attempt, policy) - expected) <= 1e-9 * max(expected, 1)


@given(policy=policies, gaps=st.lists(st.timedeltas(timedelta(0), timedelta(hours=3)), max_size=30))
def test_fewer_than_threshold_signals_in_a_window_never_park(
    policy: Policy, gaps: list[timedelta]
) -> None:
    gate, now = GateView(), T0
    times: list[datetime] = []
    for gap in gaps:
        now += gap
        decision = on_signal(gate, now, policy)
        times.append(now)
        in_window = [
            t
            for t in times
            if decision.gate.window_started_at and t >= decision.gate.window_started_at
        ]
        if Action.DIAGNOSE in decision.actions:
            # Only N signals inside one window can ask for a diagnosis (and so a park).
            assert len(in_window) >= policy.threshold
            assert decision.gate.signals >= policy.threshold
        else:
            assert decision.gate.signals < policy.threshold
        assert decision.gate.state is not GateState.PARKED
        gate = decision.gate


def test_threshold_signals_within_the_window_ask_for_a_diagnosis() -> None:
    policy = Policy(threshold=3, window=timedelta(minutes=10))
    gate = GateView()
    for minute in range(2):
        decision = on_signal(gate, T0 + timedelta(minutes=minute), policy)
        assert decision.actions == ()
        assert decision.gate.state is GateState.SUSPECT
        gate = decision.gate
    decision = on_signal(gate, T0 + timedelta(minutes=2), policy)
    assert decision.actions == (Action.DIAGNOSE,)


def test_suspect_gate_decays_to_open_after_a_quiet_window() -> None:
    policy = Policy(threshold=3, window=timedelta(minutes=10))
    gate = on_signal(GateView(), T0, policy).gate
    assert decay(gate, T0 + timedelta(minutes=9), policy).state is GateState.SUSPECT
    assert decay(gate, T0 + timedelta(minutes=11), policy) == GateView()
    # A signal after the quiet window starts counting again from one.
    later = on_signal(gate, T0 + timedelta(minutes=11), policy)
    assert later.gate.signals == 1


def test_success_opens_a_suspect_gate_without_release() -> None:
    gate = on_signal(GateView(), T0, Policy()).gate
    assert on_success(gate) == on_success(GateView())
    assert on_success(gate).actions == ()


@given(policy=policies, seed=st.integers(), failures=st.integers(0, 80))
def test_parked_gate_never_allows_a_call_until_success(
    policy: Policy, seed: int, failures: int
) -> None:
    rng = random.Random(seed)
    gate = park(GateView(), T0, policy, rng, pending=False)
    now = T0
    for _ in range(failures):
        assert gate.state is GateState.PARKED  # holds its work (app.gates.scopes)
        assert on_signal(gate, now, policy).gate == gate  # more signals change nothing
        if gate.dormant_since is not None:
            assert gate.next_probe_at is None  # dormant: no probe until woken
            woken = wake(gate, now, policy, last_probe_at=now, forced=True)
            assert woken is not None
            assert woken.next_probe_at == now
            gate = woken
        assert gate.next_probe_at is not None
        now = gate.next_probe_at
        assert probe_due(gate, now)
        gate = on_probe_failure(gate, now, policy, rng)
        if gate.next_probe_at is not None:
            assert gate.next_probe_at > now
            # Every probe but a wake's could come within the awake time after parking (its
            # jitter may carry it past by at most the floor).
            assert gate.parked_at is not None
            floor = timedelta(seconds=probe_floor(gate.probe_attempt, policy))
            assert now + floor - gate.parked_at <= policy.dormant_after
    assert gate.state is GateState.PARKED
    opened = on_success(gate)
    assert opened.gate.state is GateState.OPEN
    assert opened.actions == (Action.RELEASE,)


@given(keys=st.lists(st.text(min_size=26, max_size=26), unique=True), size=st.integers(1, 50))
def test_release_preserves_order_and_loses_nothing(keys: list[str], size: int) -> None:
    ordered = sorted(keys)
    batches = release_batches(ordered, size)
    assert [k for batch in batches for k in batch] == ordered
    assert all(1 <= len(batch) <= size for batch in batches)


def test_parked_events_expire_after_the_retention() -> None:
    policy = Policy(retention=timedelta(days=14))
    assert not expired(T0, T0 + timedelta(days=13, hours=23), policy)
    assert expired(T0, T0 + timedelta(days=14, seconds=1), policy)


@given(policy=policies, seed=st.integers(), hours=st.integers(0, 30 * 24))
def test_a_dormant_gate_probes_again_only_when_woken(policy: Policy, seed: int, hours: int) -> None:
    """FACTS.md §8: every 403 counts, probes included. Parked with nothing new, a gate goes
    dormant; a webhook wakes it at most once per probe cap, the sweep or an operator always."""
    # Real-world probe delays, so that the walk to dormancy stays short.
    policy = replace(policy, probe_base_s=30.0, probe_cap_s=max(policy.probe_cap_s, 600.0))
    rng = random.Random(seed)
    gate = park(GateView(), T0, policy, rng, pending=False)
    probes = 0
    while gate.next_probe_at is not None:
        now = gate.next_probe_at
        gate = on_probe_failure(gate, now, policy, rng)
        probes += 1
    assert gate.dormant_since is not None
    later = gate.dormant_since + timedelta(hours=hours)
    assert wake(gate, later, policy, last_probe_at=gate.dormant_since) == (
        None
        if hours * 3600 < policy.probe_cap_s
        else replace(gate, dormant_since=None, woken_at=later, next_probe_at=later)
    )
    woken = wake(gate, later, policy, last_probe_at=gate.dormant_since, forced=True)
    assert woken is not None
    again = on_probe_failure(woken, later, policy, rng)
    assert again.next_probe_at is None  # one probe per wake
    assert again.dormant_since == later
    assert wake(GateView(), later, policy, last_probe_at=None, forced=True) is None
