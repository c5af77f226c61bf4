"""The gates: what the rest of the service asks of them, and the tending loop.

A gate guards one scope (`app.gates.scopes`) against calls to Procore. Read the package
top-down:

- `policy` — the whole rule set, pure: which gate a refusal counts against, when signals
  park, backoff, release order, expiry, dormancy.
- `scopes` — which gate holds a piece of work, in Python and in SQL (one definition).
- `verdicts` — may this work call Procore now?
- `signals` — Procore's answers (and OAuth connects) fed to the gates.
- `diagnosis` and `probes` — which scope is at fault, and the parked gates' checks.
- `transitions` — the one writer per transition, and the gates' feed.
- `incidents` — many projects of one company refused at once: one update-pending incident.
- `wakes` — the outside signals that wake a dormant gate.
- `release` — parked work back to the queue in order; expiry.
- `operator` — confirm an install, park or open by hand.
"""

from __future__ import annotations

from app.gates.deps import GatesDeps
from app.gates.operator import confirm_install, operator_park, operator_unpark
from app.gates.probes import ProbeReport, run_due_probes
from app.gates.release import expire_parked, release_opened
from app.gates.signals import ScopeOutcome, connected, record_outcome, record_outcomes
from app.gates.verdicts import OPEN, GateVerdict, verdict
from app.gates.wakes import companies_installed, wake_on_webhooks

__all__ = [
    "OPEN",
    "GateVerdict",
    "ProbeReport",
    "ScopeOutcome",
    "companies_installed",
    "confirm_install",
    "connected",
    "expire_parked",
    "operator_park",
    "operator_unpark",
    "record_outcome",
    "record_outcomes",
    "release_opened",
    "run_due_probes",
    "tend",
    "verdict",
    "wake_on_webhooks",
]


async def tend(deps: GatesDeps) -> None:
    """One tick of gate upkeep (an arq cron): wakes, probes, release, expiry."""
    await wake_on_webhooks(deps)
    await run_due_probes(deps)
    await release_opened(deps)
    await expire_parked(deps)
