"""The in-process guard in front of each company: slow start, and a hold on repeated refusals.

The gates in Postgres decide for the whole fleet, but only once a batch's outcomes are
committed. Between a first refusal and that commit, every job of this process could still call
an uninstalled company — a storm's first wave. The guard closes that gap inside one process:

- Slow start: calls to a company run one at a time until it has answered 2xx in this process
  (since its last refusal). A company that answers normally pays this once, for one call.
- Hold: after `threshold` refusals without a success (within `memory` seconds), no more calls
  to it from this process; the events wait a moment, and by then the gate is parked.

So an uninstalled company receives at most `threshold` calls per worker process before the
fleet-wide gate takes over. The memory is short on purpose: the gate (and its probes) are the
authority; the guard only bridges the seconds until a batch commits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Company:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    proven: bool = False
    refusals: list[float] = field(default_factory=list)


class CompanyGuard:
    def __init__(self, *, threshold: int, memory_seconds: float = 15.0) -> None:
        self._threshold = threshold
        self._memory = memory_seconds
        self._companies: dict[int, _Company] = {}

    def held(self, company_id: int, now: float | None = None) -> bool:
        """Too many recent refusals from this company: do not call it now."""
        entry = self._companies.get(company_id)
        if entry is None:
            return False
        self._forget_old(entry, time.monotonic() if now is None else now)
        return len(entry.refusals) >= self._threshold

    @asynccontextmanager
    async def calling(self, company_id: int) -> AsyncIterator[None]:
        """Hold this around a call: serialised while the company is not proven."""
        entry = self._companies.setdefault(company_id, _Company())
        if entry.proven:
            yield
            return
        async with entry.lock:
            yield

    def succeeded(self, company_id: int) -> None:
        entry = self._companies.setdefault(company_id, _Company())
        entry.proven = True
        entry.refusals.clear()

    def refused(self, company_id: int, now: float | None = None) -> None:
        entry = self._companies.setdefault(company_id, _Company())
        entry.proven = False
        entry.refusals.append(time.monotonic() if now is None else now)
        self._forget_old(entry, entry.refusals[-1])

    def _forget_old(self, entry: _Company, now: float) -> None:
        cutoff = now - self._memory
        while entry.refusals and entry.refusals[0] < cutoff:
            entry.refusals.pop(0)
