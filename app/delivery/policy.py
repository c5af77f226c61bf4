"""A destination's rules, as pure functions: `(destination, what a round found, now, rng) →
(destination, actions)`. The same machinery as a Procore scope's gate:

    open ──failure──▶ suspect ──N failures in a row──▶ parked ──probe delivered──▶ open
      ▲                  │ delivered                      │ probe fails: attempt+1, next
      └──────────────────┘                                │ probe later (capped, jittered)

- open: messages flow, `window` of them in flight at once (distinct resources).
- suspect: one message at a time, each retry after a full-jitter backoff
  (`min(cap, base·2^failures)·U(0,1)`, the Procore calls' own `full_jitter`).
- parked: nothing but a probe — the oldest held message, alone — when it is due, with the
  gates' probe delay (`min(cap, base·2^attempt)` with equal jitter). Probing never stops.
- released (a probe delivered): everything held follows in order, paced by slow start: the
  window starts at 1 and doubles after each round that went through, up to its maximum.

A destination that answers — even with a refusal that dead-letters the message — is reachable:
only failures (5xx, 408, 429, timeouts, refused connections, redirects) count. Nothing here
does I/O; `app.delivery.service` applies the results under the destination's lease.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.gates.policy import Policy as ProbePolicy
from app.gates.policy import probe_delay, probe_floor
from app.models import DestinationState
from app.procore.backoff import full_jitter
from app.settings import Settings

# The default of DELIVERY_PROBE_*.
_PROBE = ProbePolicy(probe_base_s=30.0, probe_cap_s=3600.0)


@dataclass(frozen=True, slots=True)
class Rules:
    park_threshold: int = 5  # DELIVERY_PARK_THRESHOLD
    retry_base_s: float = 1.0  # DELIVERY_RETRY_BASE_SECONDS
    retry_cap_s: float = 60.0  # DELIVERY_RETRY_CAP_SECONDS
    probe: ProbePolicy = _PROBE
    max_window: int = 8  # DELIVERY_CONCURRENCY
    batch_size: int = 100  # DELIVERY_BATCH_SIZE

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            park_threshold=settings.delivery_park_threshold,
            retry_base_s=settings.delivery_retry_base_seconds,
            retry_cap_s=settings.delivery_retry_cap_seconds,
            probe=ProbePolicy(
                probe_base_s=settings.delivery_probe_base_seconds,
                probe_cap_s=settings.delivery_probe_cap_seconds,
            ),
            max_window=settings.delivery_concurrency,
            batch_size=settings.delivery_batch_size,
        )

    def longest_wait(self) -> float:
        """No wait the rules set is longer than this (a Retry-After is capped to it too)."""
        return max(self.retry_cap_s, self.probe.probe_cap_s)


@dataclass(frozen=True, slots=True)
class View:
    """The part of a destination row the rules read and write."""

    state: DestinationState = DestinationState.OPEN
    failures: int = 0
    probe_attempt: int = 0
    window: int = 1
    next_attempt_at: datetime | None = None
    parked_at: datetime | None = None


class Action(StrEnum):
    PARK = "park"
    # A probe went through: the destination is open again and what it held follows.
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Decision:
    view: View
    actions: tuple[Action, ...] = ()


def due(view: View, now: datetime) -> bool:
    return view.next_attempt_at is None or view.next_attempt_at <= now


def round_size(view: View, now: datetime, rules: Rules) -> int:
    """How many messages the next round may take: none before a retry or probe is due, one
    while suspect or parked (a parked destination gets one probe, never more), the window
    while a release is ramping up, a batch once it is at full speed."""
    if not due(view, now):
        return 0
    if view.state is not DestinationState.OPEN:
        return 1
    window = in_flight(view, rules)
    return rules.batch_size if window >= rules.max_window else window


def in_flight(view: View, rules: Rules) -> int:
    """Messages sent at once."""
    if view.state is not DestinationState.OPEN:
        return 1
    return max(1, min(view.window, rules.max_window))


def after_round(
    view: View,
    *,
    answered: int,
    failed: bool,
    now: datetime,
    rules: Rules,
    rng: random.Random,
    retry_after: float | None = None,
) -> Decision:
    """The destination after a round: `answered` messages got an answer (delivered or
    dead-lettered), then one failed if `failed` (a round stops at its first failure)."""
    actions: list[Action] = []
    if answered:
        decided = _answered(view, rules)
        view = decided.view
        actions += decided.actions
    if failed:
        decided = _failed(view, now, rules, rng, retry_after)
        view = decided.view
        actions += decided.actions
    return Decision(view, tuple(actions))


def _answered(view: View, rules: Rules) -> Decision:
    if view.state is DestinationState.PARKED:
        return Decision(View(), (Action.RELEASE,))
    if view.state is DestinationState.SUSPECT:
        return Decision(View())
    return Decision(View(window=min(rules.max_window, max(1, view.window) * 2)))


def _failed(
    view: View, now: datetime, rules: Rules, rng: random.Random, retry_after: float | None
) -> Decision:
    if view.state is DestinationState.PARKED:
        attempt = view.probe_attempt + 1
        wait = _at_least(probe_delay(attempt, rules.probe, rng), retry_after, rules)
        return Decision(
            replace(view, probe_attempt=attempt, next_attempt_at=now + timedelta(seconds=wait))
        )
    failures = view.failures + 1
    if failures >= rules.park_threshold:
        wait = _at_least(probe_delay(0, rules.probe, rng), retry_after, rules)
        parked = View(
            state=DestinationState.PARKED,
            failures=failures,
            probe_attempt=0,
            window=1,
            next_attempt_at=now + timedelta(seconds=wait),
            parked_at=now,
        )
        return Decision(parked, (Action.PARK,))
    wait = _at_least(
        full_jitter(failures, rules.retry_base_s, rules.retry_cap_s, rng), retry_after, rules
    )
    return Decision(
        View(
            state=DestinationState.SUSPECT,
            failures=failures,
            window=1,
            next_attempt_at=now + timedelta(seconds=wait),
        )
    )


def _at_least(wait: float, retry_after: float | None, rules: Rules) -> float:
    """A Retry-After the destination asked for is honoured, within the rules' longest wait."""
    if retry_after is None:
        return wait
    return min(max(wait, retry_after), rules.longest_wait())


def probe_floor_of(attempt: int, rules: Rules) -> float:
    """The shortest wait before probe number `attempt + 1` (equal jitter keeps half)."""
    return probe_floor(attempt, rules.probe)
