"""Procore's two rate-limit windows (FACTS.md §5). Pure: the caller passes the time.

Each budget key (a client, or a client and company for a service account) has an hourly
window and a short spike window, both fixed windows that start at the first call after the
previous one ran out. A refused call consumes nothing. The headers describe whichever window
is nearer to exhaustion: fewer calls remaining, or on a tie the one that resets later (that
is the one the caller actually has to wait for).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

from simulator.seed import RateLimitSettings

HOURLY_429_TEXT = (
    "You have surpassed the max number of requests for an hour. "
    "Please wait until your limit resets."
)


@dataclass(slots=True)
class Window:
    limit: int
    length_s: float
    started_at: float = -math.inf
    used: int = 0

    def roll(self, now: float) -> None:
        if now >= self.started_at + self.length_s:
            self.started_at = now
            self.used = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_at(self) -> float:
        return self.started_at + self.length_s


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self._budgets: dict[Hashable, tuple[Window, Window]] = {}
        self.refused = 0

    def configure(self, settings: RateLimitSettings) -> None:
        """New limits start fresh windows for everyone, so a test knows where it stands."""
        self.settings = settings
        self._budgets.clear()

    def take(self, key: Hashable, now: float) -> Verdict:
        hourly, spike = self._windows(key)
        hourly.roll(now)
        spike.roll(now)
        allowed = hourly.remaining > 0 and spike.remaining > 0
        if allowed:
            hourly.used += 1
            spike.used += 1
        else:
            self.refused += 1
        nearest = _nearest(hourly, spike)
        reset = math.ceil(nearest.reset_at)
        return Verdict(
            allowed=allowed,
            limit=nearest.limit,
            remaining=nearest.remaining,
            reset=reset,
            retry_after_s=max(1, math.ceil(nearest.reset_at - now)),
        )

    def _windows(self, key: Hashable) -> tuple[Window, Window]:
        windows = self._budgets.get(key)
        if windows is None:
            s = self.settings
            windows = (Window(s.hourly, s.hourly_window_s), Window(s.spike, s.spike_window_s))
            self._budgets[key] = windows
        return windows


def _nearest(hourly: Window, spike: Window) -> Window:
    if hourly.remaining != spike.remaining:
        return hourly if hourly.remaining < spike.remaining else spike
    return hourly if hourly.reset_at >= spike.reset_at else spike
