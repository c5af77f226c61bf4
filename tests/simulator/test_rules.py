"""Property tests for the simulator's pure rules: rate windows, backoff, event ids."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from simulator.payloads import FIRST_V2_ID, EventIds
from simulator.ratelimit import RateLimiter
from simulator.seed import RateLimitSettings
from simulator.sender import MAX_BACKOFF_S, backoff_s

steps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=200)


@given(
    gaps=steps,
    hourly=st.integers(0, 30),
    spike=st.integers(0, 10),
    spike_window=st.floats(0.5, 10),
)
def test_no_window_ever_lets_through_more_than_its_limit(
    gaps: list[float], hourly: int, spike: int, spike_window: float
) -> None:
    settings = RateLimitSettings(
        hourly=hourly, hourly_window_s=60, spike=spike, spike_window_s=spike_window
    )
    limiter = RateLimiter(settings)
    now, allowed_at = 1_000.0, []
    for gap in gaps:
        now += gap
        verdict = limiter.take("client", now)
        assert 0 <= verdict.remaining <= verdict.limit
        assert verdict.reset >= now
        if verdict.allowed:
            allowed_at.append(now)
        else:
            assert verdict.remaining == 0
    # Fixed windows: a span shorter than a window overlaps at most two of them.
    for i, start in enumerate(allowed_at):
        within_spike = [t for t in allowed_at[i:] if t < start + spike_window]
        within_hour = [t for t in allowed_at[i:] if t < start + 60]
        assert len(within_spike) <= 2 * spike
        assert len(within_hour) <= 2 * hourly
    assert len(allowed_at) + limiter.refused == len(gaps)


@given(failures=st.integers(1, 10_000), scale=st.floats(1e-6, 10))
def test_backoff_doubles_up_to_an_hour(failures: int, scale: float) -> None:
    delay = backoff_s(failures, scale)

    assert scale * (1 - 1e-9) <= delay <= MAX_BACKOFF_S * scale * (1 + 1e-9)
    assert backoff_s(failures + 1, scale) >= delay


def test_backoff_steps() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 12, 13, 40)] == [1, 2, 4, 2048, 3600, 3600]


@given(seed=st.integers(0, 2**32), offsets_ms=st.lists(st.integers(0, 3), min_size=2, max_size=100))
def test_event_ids_are_large_unique_and_sorted(seed: int, offsets_ms: list[int]) -> None:
    ids = EventIds(random.Random(seed))
    moment = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)
    issued = []
    for offset in offsets_ms:
        moment += timedelta(milliseconds=offset)
        issued.append(ids.next(moment))

    assert all(i.id > FIRST_V2_ID - 1 and i.id < 2**63 for i in issued)
    assert [i.id for i in issued] == sorted({i.id for i in issued})
    assert [i.ulid for i in issued] == sorted({i.ulid for i in issued})
    assert all(len(i.ulid) == 26 for i in issued)
