"""The in-process guard in front of each company: slow start, and a hold on repeated refusals.

The gates in Postgres decide for the whole fleet, but only once a batch's outcomes are
committed. Between a first refusal and that commit, every job of this process could still call
an uninstalled company — a storm's first wave. The guard closes that gap inside one process:

- Slow start: calls to a company run one at a time until it has answered 2xx in this process
  (since its last refusal). A company that answers normally pays this once, for one call.
- Hold: after `threshold` refusals of one scope (the company, or one of its projects for a
  permission refusal) without a success, within `memory` seconds, no more calls to that scope
  from this process; the events wait a moment, and by then the gate is parked.

So an uninstalled company receives at most `threshold` calls per worker process before the
fleet-wide gate takes over. The memory is short on purpose, and a gate opening (seen in the
gate verdicts of each batch) wipes the refusals before it: the gate and its probes are the
authority; the guard only bridges the seconds until a batch commits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime


def company_scope(company_id: int) -> Hashable:
    return ("company", company_id)


def project_scope(company_id: int, project_id: int) -> Hashable:
    return ("project", company_id, project_id)


@dataclass(slots=True)
class _Company:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    proven: bool = False


class CompanyGuard:
    def __init__(self, *, threshold: int, memory_seconds: float = 15.0) -> None:
        self._threshold = threshold
        self._memory = memory_seconds
        self._companies: dict[int, _Company] = {}
        self._refusals: dict[Hashable, list[float]] = {}

    @asynccontextmanager
    async def calling(self, company_id: int) -> AsyncIterator[None]:
        """Hold this around a call: serialised while the company is not proven."""
        entry = self._companies.setdefault(company_id, _Company())
        if entry.proven:
            yield
            return
        async with entry.lock:
            yield

    def held(self, *scopes: Hashable, now: float | None = None) -> bool:
        """Too many recent refusals from one of these scopes: do not call it now."""
        moment = time.time() if now is None else now
        return any(len(self._recent(scope, moment)) >= self._threshold for scope in scopes)

    def succeeded(self, company_id: int, *scopes: Hashable) -> None:
        self._companies.setdefault(company_id, _Company()).proven = True
        for scope in (company_scope(company_id), *scopes):
            self._refusals.pop(scope, None)

    def refused(self, company_id: int, scope: Hashable, now: float | None = None) -> None:
        if scope == company_scope(company_id):
            self._companies.setdefault(company_id, _Company()).proven = False
        moment = time.time() if now is None else now
        self._refusals[scope] = [*self._recent(scope, moment), moment]

    def gate_opened(self, opened_at: datetime, *scopes: Hashable) -> None:
        """A gate of these scopes opened (a probe, an operator, a connect) after refusals this
        process saw: those are answered, so they no longer hold calls back."""
        moment = opened_at.timestamp()
        for scope in scopes:
            if scope in self._refusals:
                self._refusals[scope] = [t for t in self._refusals[scope] if t > moment]

    def _recent(self, scope: Hashable, now: float) -> list[float]:
        cutoff = now - self._memory
        return [t for t in self._refusals.get(scope, ()) if t >= cutoff]
