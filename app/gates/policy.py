"""The gate rules, as pure functions: `(gate, what happened, now, rng) → (gate, actions)`.

A gate guards one scope (`app.gates.scopes`): a credential, a company, a resource type in
the company, a project, or a resource type in one project. The whole rule set, top-down:

1. Which gate a refusal counts against (`signalled`): the narrowest scope of the call, or the
   company / credential when the answer says so; the diagnosis widens it later.
2. The gate's life (`on_signal`, `park`, `on_probe_failure`, `on_success`):

    open ──signal──▶ suspect ──N signals within W──▶ parked ──probe ok / confirmed──▶ open
      ▲                 │ success, or W without a signal      │ probe fails: attempt+1,
      └─────────────────┘                                     │ next probe later (capped)

   A parked gate holds all work of its scope and of the scopes inside it.
3. Probe timing (`probe_delay`, `probe_ceiling`, `probe_floor`, `probe_due`).
4. What the feed says (`Transition`, `needs_admin`).
5. Release order and expiry (`release_batches`, `expired`), run in SQL and compared with these
   in tests/test_gate_store_properties.py.

Nothing here does I/O; `app.gates.transitions` writes the results with conditional updates
so that concurrent workers agree. Everything that varies (time, randomness) is an argument.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from app.gates.scopes import Scope, Work
from app.models import GateScope, GateState
from app.procore.answers import Outcome, OutcomeKind

if TYPE_CHECKING:
    from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Policy:
    threshold: int = 3  # PARK_THRESHOLD: signals within the window that park the gate
    window: timedelta = timedelta(minutes=10)  # PARK_WINDOW_SECONDS
    probe_base_s: float = 30.0  # PROBE_BASE_SECONDS
    probe_cap_s: float = 3600.0  # PROBE_CAP_SECONDS
    retention: timedelta = timedelta(days=14)  # PARKED_RETENTION_DAYS
    release_batch: int = 500  # RELEASE_BATCH_SIZE
    # DORMANT_AFTER_SECONDS: parked this long with nothing new, a gate stops probing.
    dormant_after: timedelta = timedelta(minutes=15)


def from_settings(settings: Settings) -> Policy:
    return Policy(
        threshold=settings.park_threshold,
        window=timedelta(seconds=settings.park_window_seconds),
        probe_base_s=settings.probe_base_seconds,
        probe_cap_s=settings.probe_cap_seconds,
        retention=timedelta(days=settings.parked_retention_days),
        release_batch=settings.release_batch_size,
        dormant_after=timedelta(seconds=settings.dormant_after_seconds),
    )


@dataclass(frozen=True, slots=True)
class GateView:
    """The part of a gate row the rules read and write."""

    state: GateState = GateState.OPEN
    signals: int = 0
    window_started_at: datetime | None = None
    parked_at: datetime | None = None
    probe_attempt: int = 0
    next_probe_at: datetime | None = None
    # Dormant: parked, no probes until an outside signal (`wake`).
    dormant_since: datetime | None = None
    # Woken by an outside signal: one probe, then dormant again if it still fails.
    woken_at: datetime | None = None


class Diagnosis(StrEnum):
    PENDING = "pending"
    OK = "ok"
    CREDENTIAL_INVALID = "credential_invalid"
    NO_CREDENTIAL = "no_credential"
    NOT_INSTALLED = "not_installed"
    NO_PROJECT_ACCESS = "no_project_access"
    PERMISSION = "permission"
    # The permission template lacks one tool: 403 in every project (FACTS.md §6, cause 2).
    TOOL_PERMISSION = "tool_permission"
    # One tool is disabled in one project (FACTS.md §6, cause 3).
    TOOL_DISABLED = "tool_disabled"
    # Many projects of an installed company left the permitted projects at once: an app
    # update or reinstall (FACTS.md §3). One incident for the company; each project waits.
    UPDATE_PENDING = "update_pending"
    # No usable answer (5xx, timeout, rate limit): nothing learned, probe again later.
    UNREACHABLE = "unreachable"
    # Parked by hand (no probe reopens it): the operator knows, nobody else is asked to act.
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Signalled:
    """The scope an answer is evidence against, and a diagnosis known without a probe."""

    scope: Scope
    immediate: Diagnosis | None = None


def signalled(work: Work, outcome: Outcome) -> Signalled | None:
    """Which gate a refusal counts against (None: the answer is no evidence against any).

    - "not connected" is the company's; so is a 401 that survived a fresh token (the
      diagnosis tells a dead credential from an uninstalled app, FACTS.md §6).
    - A 401 before any call (the token service already knows) is the credential's, at once;
      no credential at all is the company's, at once.
    - Any other 403 is the narrowest scope the call was in: the diagnosis widens it.
    - 404s in a project may mean the project cannot be seen (Procore answers 404 rather than
      403 then): the project's, checked by a probe.
    """
    kind, company = outcome.kind, work.company_id
    if kind is OutcomeKind.NOT_INSTALLED:
        return Signalled(Scope(GateScope.COMPANY, company))
    if kind is OutcomeKind.FORBIDDEN:
        return Signalled(narrowest(work))
    if kind is OutcomeKind.UNAUTHORIZED:
        if outcome.status is not None:
            return Signalled(Scope(GateScope.COMPANY, company))
        if work.credential_id is not None:
            # Credential gates keep the company they were seen in: probes of `/me` need a
            # Procore-Company-Id (service accounts must send one on every call).
            return Signalled(
                Scope(GateScope.CREDENTIAL, company, credential_id=work.credential_id),
                Diagnosis.CREDENTIAL_INVALID,
            )
        return Signalled(Scope(GateScope.COMPANY, company), Diagnosis.NO_CREDENTIAL)
    if kind is OutcomeKind.NOT_FOUND and work.project_id is not None:
        return Signalled(Scope(GateScope.PROJECT, company, work.project_id))
    return None


def narrowest(work: Work) -> Scope:
    """The smallest scope a refused call was in: a 403 on Submittals in project 7 holds
    Submittals in project 7 until the diagnosis finds the company, Submittals everywhere or
    project 7 at fault (FACTS.md §6)."""
    company, project, resource = work.company_id, work.project_id, work.resource_name
    if project is not None and resource is not None:
        return Scope(GateScope.PROJECT_TOOL, company, project, resource)
    if project is not None:
        return Scope(GateScope.PROJECT, company, project)
    if resource is not None:
        return Scope(GateScope.TOOL, company, resource_name=resource)
    return Scope(GateScope.COMPANY, company)


class Action(StrEnum):
    # The Nth signal arrived: find out which scope is really at fault before parking.
    DIAGNOSE = "diagnose"
    # The gate just opened: parked events go back to the queue, in order, in paced batches.
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Decision:
    gate: GateView
    actions: tuple[Action, ...] = ()


def decay(gate: GateView, now: datetime, policy: Policy) -> GateView:
    """A suspect gate with no new signal for a whole window is open again."""
    if gate.state is GateState.SUSPECT and _window_over(gate, now, policy):
        return GateView()
    return gate


def on_signal(gate: GateView, now: datetime, policy: Policy) -> Decision:
    """A 401/403 that survived a fresh token, seen on this gate's scope."""
    if gate.state is GateState.PARKED:
        return Decision(gate)
    gate = decay(gate, now, policy)
    if gate.state is GateState.OPEN:
        gate = replace(gate, state=GateState.SUSPECT, signals=0, window_started_at=now)
    gate = replace(gate, signals=gate.signals + 1)
    if gate.signals >= policy.threshold:
        return Decision(gate, (Action.DIAGNOSE,))
    return Decision(gate)


def on_success(gate: GateView) -> Decision:
    """A 2xx from the scope proves access: the gate opens (releasing anything parked)."""
    if gate.state is GateState.PARKED:
        return Decision(GateView(), (Action.RELEASE,))
    return Decision(GateView())


def park(
    gate: GateView, now: datetime, policy: Policy, rng: random.Random, *, pending: bool
) -> GateView:
    """Close the gate. A pending diagnosis runs at once (its probe is due now: no call leaks
    to the scope while it runs); a known one waits for its first probe."""
    if gate.state is GateState.PARKED:
        return gate
    delay = 0.0 if pending else probe_delay(0, policy, rng)
    return GateView(
        state=GateState.PARKED,
        signals=gate.signals,
        window_started_at=gate.window_started_at,
        parked_at=now,
        probe_attempt=0,
        next_probe_at=now + timedelta(seconds=delay),
    )


def park_by_operator(gate: GateView, now: datetime) -> GateView:
    """An operator's park: held until an operator opens it; no probe reopens it."""
    return replace(gate, state=GateState.PARKED, parked_at=now, next_probe_at=None)


class Transition(StrEnum):
    """What the gates' feed (`gate_transitions`) tells downstream systems."""

    PARKED = "parked"
    # A diagnosis named what an administrator must do (install, permit, grant).
    NEEDS_ADMIN = "needs_admin"
    RELEASED = "released"
    # The fault was a parent's: the parked work moved to the parent's gate.
    MOVED = "moved"
    DORMANT = "dormant"
    WOKEN = "woken"


_PROJECT_LOST = frozenset({Diagnosis.NO_PROJECT_ACCESS, Diagnosis.UPDATE_PENDING})


def update_pending(lost_projects: int, *, company_parked: bool, threshold: int) -> bool:
    """Projects of one company refused at once (`lost_projects`, parked for no project
    access) are an app update's reset of the permitted projects, not unrelated faults, once
    there are `threshold` of them in a company that is itself installed."""
    return not company_parked and lost_projects >= threshold


def project_lost(diagnosis: str | None) -> bool:
    return diagnosis in _PROJECT_LOST


def needs_admin(before: str | None, after: Diagnosis) -> bool:
    """A probe found a new diagnosis that only an administrator can fix."""
    if after in (Diagnosis.PENDING, Diagnosis.UNREACHABLE, Diagnosis.OK, Diagnosis.OPERATOR):
        return False
    return before != after.value


def on_probe_failure(gate: GateView, now: datetime, policy: Policy, rng: random.Random) -> GateView:
    """The probe still fails: wait longer next time, up to the cap — unless the next probe
    could not come before `dormant_after` parked (or this was a wake's one probe): the gate
    goes dormant. Procore counts every 403, probes included (FACTS.md §8), and an install is
    told by outside signals (a webhook, an operator, a connect, the `/companies` sweep)."""
    attempt = gate.probe_attempt + 1
    # Decided on the earliest the next probe could come (not its jittered time): the same
    # history makes the same gate dormant, whichever process writes it.
    earliest = now + timedelta(seconds=probe_floor(attempt, policy))
    later = now + timedelta(seconds=probe_delay(attempt, policy, rng))
    if (
        gate.woken_at is not None
        or gate.dormant_since is not None
        or _past_awake(gate, earliest, policy)
    ):
        return replace(
            gate, probe_attempt=attempt, next_probe_at=None, dormant_since=now, woken_at=None
        )
    return replace(gate, probe_attempt=attempt, next_probe_at=later)


def _past_awake(gate: GateView, at: datetime, policy: Policy) -> bool:
    return gate.parked_at is not None and at - gate.parked_at > policy.dormant_after


def wake(
    gate: GateView,
    now: datetime,
    policy: Policy,
    *,
    last_probe_at: datetime | None,
    forced: bool = False,
) -> GateView | None:
    """An outside signal for a dormant gate: probe once, now. A webhook wakes it at most once
    per probe cap (a storm must not become a probe per event); an operator or the
    `/companies` sweep (`forced`) always. None: nothing to do."""
    if gate.state is not GateState.PARKED or gate.dormant_since is None:
        return None
    recent = (
        last_probe_at is not None and (now - last_probe_at).total_seconds() < policy.probe_cap_s
    )
    if recent and not forced:
        return None
    return replace(gate, dormant_since=None, woken_at=now, next_probe_at=now)


def probe_delay(attempt: int, policy: Policy, rng: random.Random) -> float:
    """`min(cap, base·2^attempt)` with equal jitter: a random point in its upper half.

    The floor (half the capped delay) keeps probes from bunching up near zero, and the jitter
    keeps many parked gates from probing in lockstep. The cap bounds the delay, not the count.
    """
    ceiling = probe_ceiling(attempt, policy)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def probe_ceiling(attempt: int, policy: Policy) -> float:
    # Cap the exponent first: 2**attempt for a gate parked for months must not overflow.
    exponent = min(attempt, 62)
    return min(policy.probe_cap_s, policy.probe_base_s * 2.0**exponent)


def probe_floor(attempt: int, policy: Policy) -> float:
    return probe_ceiling(attempt, policy) / 2


def probe_due(gate: GateView, now: datetime) -> bool:
    return (
        gate.state is GateState.PARKED
        and gate.next_probe_at is not None
        and gate.next_probe_at <= now
    )


def expired(received_at: datetime, now: datetime, policy: Policy) -> bool:
    """A parked event older than the retention goes to `dead` (expired_while_parked)."""
    return now - received_at > policy.retention


T = TypeVar("T")


def release_batches(ordered: Sequence[T], size: int) -> list[list[T]]:
    """Parked events leave in received (ULID) order, in batches paced by the caller."""
    return [list(ordered[i : i + size]) for i in range(0, len(ordered), size)]


def _window_over(gate: GateView, now: datetime, policy: Policy) -> bool:
    return gate.window_started_at is None or now - gate.window_started_at > policy.window
