"""The in-process guard in front of each company: slow start, and a hold on repeated refusals.

The gates in Postgres decide for the whole fleet, but only once a batch's outcomes are
committed. Between a first refusal and that commit, every job of this process could still call
an uninstalled company — a storm's first wave. The guard closes that gap inside one process:

- Slow start: calls to a company run one at a time until it has answered 2xx in this process
  (since its last refusal). A company that answers normally pays this once, for one call.
- Hold: after `threshold` refusals of one scope (the gate it counts against, as the gates
  decide) without a success, within `memory` seconds, no more calls to that scope
  from this process; the events wait a moment, and by then the gate is parked.

So an uninstalled company receives at most `threshold` calls per worker process before the
fleet-wide gate takes over. The memory is short on purpose, and a gate opening (seen in the
gate verdicts of each batch) wipes the refusals before it: the gate and its probes are the
authority; the guard only bridges the seconds until a batch commits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from app.gates import policy, scopes
from app.gates.scopes import Work
from app.models import GateScope
from app.procore.answers import Outcome


@dataclass(slots=True)
class _Company:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    proven: bool = False


class CompanyGuard:
    """Refusals are remembered under the gate key they count against (`policy.signalled`),
    and work is held by the keys of its scopes (`scopes.keys`), as the gates do."""

    def __init__(self, *, threshold: int, memory_seconds: float = 15.0) -> None:
        self._threshold = threshold
        self._memory = memory_seconds
        self._companies: dict[int, _Company] = {}
        self._refusals: dict[str, list[float]] = {}

    @asynccontextmanager
    async def calling(self, company_id: int) -> AsyncIterator[None]:
        """Hold this around a call: serialised while the company is not proven."""
        entry = self._companies.setdefault(company_id, _Company())
        if entry.proven:
            yield
            return
        async with entry.lock:
            yield

    def held(self, work: Work, now: float | None = None) -> bool:
        """Too many recent refusals from one of the work's scopes: do not call it now."""
        if not self._refusals:
            return False  # nothing refused lately: the common case costs no scope keys
        moment = time.time() if now is None else now
        return any(len(self._recent(key, moment)) >= self._threshold for key in scopes.keys(work))

    def succeeded(self, work: Work) -> None:
        self._companies.setdefault(work.company_id, _Company()).proven = True
        if not self._refusals:
            return
        for key in scopes.keys(work):
            self._refusals.pop(key, None)

    def refused(self, work: Work, outcome: Outcome, now: float | None = None) -> None:
        """An answer of Procore's that the gates count as a signal (others are ignored)."""
        found = policy.signalled(work, outcome)
        if found is None or not outcome.is_gate_signal or outcome.status is None:
            return
        if found.scope.scope is GateScope.COMPANY:
            self._companies.setdefault(work.company_id, _Company()).proven = False
        moment = time.time() if now is None else now
        key = found.scope.key
        self._refusals[key] = [*self._recent(key, moment), moment]

    def gate_opened(self, opened_at: datetime, work: Work) -> None:
        """A gate of the work's scopes opened (a probe, an operator, a connect) after
        refusals this process saw: those are answered, so they no longer hold calls back."""
        if not self._refusals:
            return
        moment = opened_at.timestamp()
        for key in scopes.keys(work):
            if key in self._refusals:
                self._refusals[key] = [t for t in self._refusals[key] if t > moment]

    def _recent(self, key: str, now: float) -> list[float]:
        cutoff = now - self._memory
        return [t for t in self._refusals.get(key, ()) if t >= cutoff]
