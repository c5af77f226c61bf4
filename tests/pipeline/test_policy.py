"""The retry policy: pure, so its rules are tested exhaustively here."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from app.events.policy import RetryPolicy, decide
from app.models import EventStatus
from app.procore.answers import Outcome, OutcomeKind
from app.procore.backoff import backoff_ceiling, full_jitter

POLICY = RetryPolicy(base_seconds=2, cap_seconds=60, max_attempts=5, rate_limit_jitter_seconds=1)
NOW = 1_700_000_000.0


def _decide(outcome: Outcome, attempts: int = 0) -> tuple[EventStatus, int, float | None]:
    d = decide(outcome, attempts=attempts, policy=POLICY, now=NOW, rng=random.Random(1))
    return d.status, d.attempts, d.delay


def test_final_outcomes() -> None:
    assert _decide(Outcome(OutcomeKind.OK, 200)) == (EventStatus.DONE, 0, None)
    assert _decide(Outcome(OutcomeKind.NOT_FOUND, 404, "gone"))[:2] == (EventStatus.SKIPPED, 0)
    rejected = decide(
        Outcome(OutcomeKind.REJECTED, 422, "Subject is blank"),
        attempts=2,
        policy=POLICY,
        now=NOW,
        rng=random.Random(),
    )
    assert rejected.status is EventStatus.DEAD
    assert rejected.final
    assert rejected.last_status == 422
    assert rejected.last_error == "Subject is blank"


def test_transient_retries_then_dies_with_the_last_answer() -> None:
    outcome = Outcome(OutcomeKind.TRANSIENT, 502, "bad gateway")
    for spent in range(POLICY.max_attempts - 1):
        status, attempts, delay = _decide(outcome, spent)
        assert status is EventStatus.RETRYING
        assert attempts == spent + 1
        assert delay is not None
        assert 0 <= delay <= backoff_ceiling(spent + 1, POLICY.base_seconds, POLICY.cap_seconds)
    last = decide(
        outcome, attempts=POLICY.max_attempts - 1, policy=POLICY, now=NOW, rng=random.Random()
    )
    assert (last.status, last.attempts, last.last_status, last.last_error) == (
        EventStatus.DEAD,
        POLICY.max_attempts,
        502,
        "bad gateway",
    )


def test_rate_limited_waits_for_the_later_header_and_spends_no_attempt() -> None:
    outcome = Outcome(OutcomeKind.RATE_LIMITED, 429, "", retry_after=3, rate_reset=NOW + 10)
    status, attempts, delay = _decide(outcome, attempts=4)
    assert status is EventStatus.RETRYING
    assert attempts == 4
    assert delay is not None
    assert 10 <= delay <= 11
    outcome = Outcome(OutcomeKind.RATE_LIMITED, 503, "", retry_after=20, rate_reset=NOW + 10)
    assert 20 <= (_decide(outcome)[2] or 0) <= 21


def test_gate_signals_are_retried_and_never_given_up() -> None:
    for kind in (OutcomeKind.UNAUTHORIZED, OutcomeKind.NOT_INSTALLED, OutcomeKind.FORBIDDEN):
        status, attempts, _ = _decide(Outcome(kind, 403), attempts=0)
        assert (status, attempts) == (EventStatus.RETRYING, 1)
        status, attempts, delay = _decide(Outcome(kind, 403), attempts=POLICY.max_attempts)
        assert (status, attempts) == (EventStatus.RETRYING, POLICY.max_attempts)
        assert delay is not None
        assert delay <= POLICY.cap_seconds


@given(attempt=st.integers(min_value=0, max_value=10_000), seed=st.integers())
def test_backoff_never_exceeds_the_cap(attempt: int, seed: int) -> None:
    delay = full_jitter(attempt, POLICY.base_seconds, POLICY.cap_seconds, random.Random(seed))
    assert 0 <= delay <= POLICY.cap_seconds


@given(attempt=st.integers(min_value=1, max_value=30))
def test_backoff_ceiling_grows_until_capped(attempt: int) -> None:
    base, cap = POLICY.base_seconds, POLICY.cap_seconds
    assert backoff_ceiling(attempt + 1, base, cap) >= backoff_ceiling(attempt, base, cap)
    assert backoff_ceiling(1, base, cap) == POLICY.base_seconds
