"""The destination rules (app.delivery.policy), pure: property tests over generated histories."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.delivery import policy
from app.delivery.policy import Action, Rules, View
from app.gates.policy import Policy as ProbePolicy
from app.gates.policy import probe_ceiling, probe_floor
from app.models import DestinationState

RULES = Rules(
    park_threshold=4,
    retry_base_s=1.0,
    retry_cap_s=20.0,
    probe=ProbePolicy(probe_base_s=30.0, probe_cap_s=600.0),
    max_window=8,
    batch_size=50,
)  # fmt: skip
T0 = datetime(2026, 12, 1, tzinfo=UTC)

# A history: each round either answered (True) or failed (False); time moves to when the
# rules allow the next round.
rounds = st.lists(st.booleans(), min_size=1, max_size=60)


def replay(history: list[bool], seed: int) -> list[tuple[View, View, policy.Decision, datetime]]:
    rng = random.Random(seed)
    view, now, seen = View(), T0, []
    for answered in history:
        if not policy.due(view, now):
            assert view.next_attempt_at is not None
            now = view.next_attempt_at
        decision = policy.after_round(
            view, answered=1 if answered else 0, failed=not answered, now=now, rules=RULES,
            rng=rng,
        )  # fmt: skip
        seen.append((view, decision.view, decision, now))
        view = decision.view
    return seen


@given(rounds, st.integers(0, 2**32))
def test_a_destination_parks_exactly_at_the_threshold_of_failures_in_a_row(
    history: list[bool], seed: int
) -> None:
    streak = 0
    for before, after, decision, _ in replay(history, seed):
        if before.state is DestinationState.PARKED:
            assert (Action.RELEASE in decision.actions) == (after.state is DestinationState.OPEN)
            streak = 0 if after.state is DestinationState.OPEN else streak
            continue
        streak = streak + 1 if after.state is not DestinationState.OPEN else 0
        parked = after.state is DestinationState.PARKED
        assert parked == (streak >= RULES.park_threshold)
        assert (Action.PARK in decision.actions) == parked


@given(rounds, st.integers(0, 2**32))
def test_waits_stay_within_their_caps_and_probes_keep_their_floor(
    history: list[bool], seed: int
) -> None:
    for _, after, _, now in replay(history, seed):
        if after.state is DestinationState.OPEN:
            assert after.next_attempt_at is None
            continue
        assert after.next_attempt_at is not None
        wait = (after.next_attempt_at - now).total_seconds()
        if after.state is DestinationState.SUSPECT:
            assert 0 <= wait <= RULES.retry_cap_s
        else:
            attempt = after.probe_attempt
            assert probe_floor(attempt, RULES.probe) <= wait
            assert wait <= probe_ceiling(attempt, RULES.probe) <= RULES.probe.probe_cap_s


@given(rounds, st.integers(0, 2**32))
def test_a_failing_destination_gets_one_message_at_a_time_and_never_before_it_is_due(
    history: list[bool], seed: int
) -> None:
    for _, after, _, now in replay(history, seed):
        if after.state is DestinationState.OPEN:
            continue
        assert policy.round_size(after, now, RULES) == 0  # not yet due
        assert after.next_attempt_at is not None
        due = after.next_attempt_at
        assert policy.round_size(after, due, RULES) == 1
        assert policy.in_flight(after, RULES) == 1
        assert policy.round_size(after, due - timedelta(microseconds=1), RULES) == 0


@given(st.integers(0, 40), st.integers(0, 2**32))
def test_a_release_starts_at_one_in_flight_and_at_most_doubles_per_round(
    rounds_after: int, seed: int
) -> None:
    rng = random.Random(seed)
    view = View(state=DestinationState.PARKED, failures=9, probe_attempt=3, next_attempt_at=T0)
    released = policy.after_round(view, answered=1, failed=False, now=T0, rules=RULES, rng=rng)
    assert released.actions == (Action.RELEASE,)
    view = released.view
    assert (view.state, policy.in_flight(view, RULES)) == (DestinationState.OPEN, 1)
    for _ in range(rounds_after):
        size = policy.round_size(view, T0, RULES)
        window = policy.in_flight(view, RULES)
        assert 1 <= window <= RULES.max_window
        assert size == (RULES.batch_size if window == RULES.max_window else window)
        grown = policy.after_round(
            view, answered=size, failed=False, now=T0, rules=RULES, rng=rng
        ).view
        assert policy.in_flight(grown, RULES) <= min(RULES.max_window, 2 * window)
        view = grown


def test_a_retry_after_is_honoured_within_the_longest_wait() -> None:
    rng = random.Random(1)
    asked = policy.after_round(
        View(), answered=0, failed=True, now=T0, rules=RULES, rng=rng, retry_after=15.0
    ).view
    assert asked.next_attempt_at is not None
    assert asked.next_attempt_at - T0 >= timedelta(seconds=15)
    greedy = policy.after_round(
        View(), answered=0, failed=True, now=T0, rules=RULES, rng=rng, retry_after=10**6
    ).view
    assert greedy.next_attempt_at == T0 + timedelta(seconds=RULES.longest_wait())


def test_an_answer_before_a_failure_in_one_round_resets_the_streak() -> None:
    rng = random.Random(2)
    suspect = View(state=DestinationState.SUSPECT, failures=3, next_attempt_at=T0)
    after = policy.after_round(suspect, answered=1, failed=True, now=T0, rules=RULES, rng=rng)
    assert (after.view.state, after.view.failures) == (DestinationState.SUSPECT, 1)
