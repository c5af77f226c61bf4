"""What happens to an event after an outcome: finish it, retry it (when), or give up. Pure.

- 2xx → `done`; 404 → `skipped`; 409/422/other 4xx → `dead` with the body, no retry.
- 429, 503 with Retry-After → `retrying` at the later of `Retry-After` and
  `X-Rate-Limit-Reset`, plus jitter. Not a failure: `attempts` is not spent.
- 5xx, timeout, connection error → `retrying` after a full-jitter exponential backoff,
  `min(cap, base * 2**attempt) * U(0, 1)`; once `max_attempts` are spent → `dead` with the
  last answer.
- 401/403 (gate signals) are retried with the same backoff but never given up: the gates
  park the scope after a few signals (and hold its events), so an install or permission
  problem costs no event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.models import EventStatus
from app.procore import backoff
from app.procore.answers import Outcome, OutcomeKind


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    max_attempts: int
    rate_limit_jitter_seconds: float


@dataclass(frozen=True, slots=True)
class Decision:
    status: EventStatus
    attempts: int
    # Seconds from now until the next attempt; None for a final status.
    delay: float | None
    last_status: int | None
    last_error: str | None

    @property
    def final(self) -> bool:
        return self.delay is None


def decide(
    outcome: Outcome, *, attempts: int, policy: RetryPolicy, now: float, rng: random.Random
) -> Decision:
    """The event's next state after `outcome`, given the attempts already spent."""
    kind = outcome.kind
    error = outcome.message or None
    if kind is OutcomeKind.OK:
        return Decision(EventStatus.DONE, attempts, None, outcome.status, None)
    if kind is OutcomeKind.NOT_FOUND:
        return Decision(EventStatus.SKIPPED, attempts, None, outcome.status, error or "not found")
    if kind is OutcomeKind.REJECTED:
        return Decision(EventStatus.DEAD, attempts, None, outcome.status, error)
    if kind is OutcomeKind.RATE_LIMITED:
        delay = backoff.rate_limit_wait(
            outcome, now=now, jitter=policy.rate_limit_jitter_seconds, rng=rng
        )
        return Decision(EventStatus.RETRYING, attempts, delay, outcome.status, error)
    spent = attempts + 1
    if outcome.is_gate_signal:
        # `attempts` stops at the limit; only the backoff grows (to its cap).
        spent = min(spent, policy.max_attempts)
    elif spent >= policy.max_attempts:
        return Decision(EventStatus.DEAD, spent, None, outcome.status, error)
    delay = backoff.full_jitter(spent, policy.base_seconds, policy.cap_seconds, rng)
    if outcome.retry_after is not None:
        delay = max(delay, outcome.retry_after)
    return Decision(EventStatus.RETRYING, spent, delay, outcome.status, error)
