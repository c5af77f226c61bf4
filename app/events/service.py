"""Processing of stored events (Flow 2)."""

from __future__ import annotations

from collections.abc import Sequence

from app.runtime import Runtime


async def process_batch(runtime: Runtime, event_ids: Sequence[int]) -> int:
    """Claim and process a batch of events; returns how many reached a final state."""
    raise NotImplementedError
