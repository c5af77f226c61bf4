"""How long to wait before calling Procore again. Pure.

- After the n-th transient failure (5xx, timeout, connection error): full jitter under a
  capped exponential, `U(0, min(cap, base * 2**(n-1)))`.
- After a 429 (or a 503 with Retry-After): the later of `Retry-After` and
  `X-Rate-Limit-Reset` (FACTS.md §5), one second when Procore said neither, plus a little
  jitter so the callers who waited do not come back at once.
"""

from __future__ import annotations

import math
import random

from app.procore.answers import Outcome


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The largest delay after `attempt` failures (1-based); full jitter draws below it."""
    exponent = min(max(attempt - 1, 0), 62)
    return float(min(cap, base * 2**exponent))


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    return rng.uniform(0.0, backoff_ceiling(attempt, base, cap))


def rate_limit_wait(
    outcome: Outcome,
    *,
    now: float,
    jitter: float,
    rng: random.Random,
    cap: float = math.inf,
) -> float:
    """Until the limit resets, bounded by `cap`, plus up to `jitter` (never negative)."""
    waits = [w for w in (outcome.retry_after, _until(outcome.rate_reset, now)) if w is not None]
    wait = max(waits) if waits else 1.0
    return min(cap, max(0.0, wait)) + rng.uniform(0.0, jitter)


def _until(moment: float | None, now: float) -> float | None:
    return None if moment is None else moment - now
