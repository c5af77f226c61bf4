"""Processing of stored events (DESIGN.md Flow 2), one job batch at a time.

1. Claim the batch's due rows in one UPDATE (status `processing`, `claims + 1`, a lease).
   Rows not returned are finished or held by another worker: skipped, so a job may run twice.
2. Coalesce: the events naming one (company, resource, id) become one target, served by one
   fetch. A `delete` is fetched too: only Procore's 404/410 confirms it (a webhook body is a
   claim, and anyone holding a token can send one); a 2xx refreshes the mirror instead.
3. Ask the gates once per scope; a closed gate parks its events without a call.
4. Fetch the targets concurrently (bounded by PROCESS_CONCURRENCY), classify each answer.
5. Apply everything in one transaction: the mirror, every event (fenced by `claims`: a
   worker whose lease ran out cannot overwrite a newer claim), the gate outcomes, the call
   audit, and the other pending events of each fetched resource received before the fetch
   (served by it too: a fan-out storm costs one call per resource).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

import httpx
import orjson
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bind_contextvars

from app import metrics
from app.db import TRANSACTION_TRIES, SessionFactory, retryable
from app.events import mirror
from app.events.policy import Decision, RetryPolicy, decide
from app.gates import service as gates
from app.gates.guard import CompanyGuard
from app.gates.scopes import Work
from app.logs import get_logger
from app.models import EventStatus
from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord, record_calls
from app.procore.client import ProcoreClient
from app.procore.tokens import CredentialRef
from app.registry import resources
from app.settings import Settings

log = get_logger(__name__)


class EventsDeps(Protocol):
    """What processing a batch of events uses. The edges pass the process's Runtime, which has all
    of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    procore: ProcoreClient
    guard: CompanyGuard


_rng = random.Random()

_CLAIM = text(
    """
    UPDATE events SET status = 'processing', claims = claims + 1,
        locked_until = now() + make_interval(secs => :lease)
    WHERE id = ANY(CAST(:ids AS bigint[]))
      AND next_attempt_at <= now()
      AND (status IN ('queued', 'retrying') OR (status = 'processing' AND locked_until < now()))
    RETURNING id, claims, attempts, company_id, project_id, resource_name, resource_id,
        event_type, occurred_at, received_at, now() AS claimed_at
    """
)

_APPLY = text(
    """
    UPDATE events e SET
        status = v.status,
        attempts = v.attempts,
        next_attempt_at = CASE
            WHEN v.delay IS NULL THEN e.next_attempt_at
            ELSE now() + make_interval(secs => v.delay)
        END,
        locked_until = NULL,
        last_status = v.last_status,
        last_error = v.last_error,
        finished_at = CASE WHEN v.final THEN now() END,
        credential_id = COALESCE(v.credential_id, e.credential_id),
        gate_id = v.gate_id
    FROM unnest(
        CAST(:id AS bigint[]), CAST(:claims AS int[]), CAST(:status AS text[]),
        CAST(:attempts AS int[]), CAST(:delay AS float8[]), CAST(:last_status AS int[]),
        CAST(:last_error AS text[]), CAST(:final AS boolean[]), CAST(:credential_id AS bigint[]),
        CAST(:gate_id AS bigint[])
    ) AS v(id, claims, status, attempts, delay, last_status, last_error, final, credential_id,
           gate_id)
    WHERE e.id = v.id AND e.claims = v.claims AND e.status = 'processing'
    RETURNING e.id, e.status
    """
)

# Pending events of a fetched resource that arrived before the fetch began are served by it,
# parked ones included (the fetch proves their scope answers again: a released backlog then
# costs one call per resource, not one per event).
# SKIP LOCKED: rows another transaction holds are left to their own job (and no deadlock).
_SERVE_PENDING = text(
    """
    UPDATE events e SET status = 'done', finished_at = now(), locked_until = NULL, gate_id = NULL,
        last_status = 200, last_error = NULL, credential_id = s.credential_id
    FROM (
        SELECT ev.id, v.credential_id FROM unnest(
            CAST(:company_id AS bigint[]), CAST(:resource_name AS text[]),
            CAST(:resource_id AS bigint[]), CAST(:as_of AS timestamptz[]),
            CAST(:credential_id AS bigint[])
        ) AS v(company_id, resource_name, resource_id, as_of, credential_id)
        JOIN events ev ON ev.company_id = v.company_id AND ev.resource_name = v.resource_name
            AND ev.resource_id = v.resource_id
        WHERE ev.status IN ('queued', 'retrying', 'parked') AND ev.received_at < v.as_of
          AND ev.event_type IS DISTINCT FROM 'delete'
        ORDER BY ev.id
        FOR UPDATE OF ev SKIP LOCKED
    ) s
    WHERE e.id = s.id
    """
)

_RECORD_PROOF = text(
    """
    INSERT INTO company_credentials (company_id, credential_id)
    SELECT * FROM unnest(CAST(:company_id AS bigint[]), CAST(:credential_id AS bigint[]))
    ON CONFLICT (company_id) DO NOTHING
    """
)

# Not tried in this job (out of time): back to `retrying` at once, no attempt spent.
DEFERRED = Outcome(OutcomeKind.RATE_LIMITED, None, "deferred: the job ran out of time", 0.0)

# Not called: this company refused PARK_THRESHOLD calls in this process and its gate is about
# to park (app.gates.guard). No attempt spent; by the next try the gate decides.
HELD = Outcome(
    OutcomeKind.RATE_LIMITED, None, "held: the company refused repeatedly; its gate decides", 1.0
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    claims: int
    attempts: int
    company_id: int
    project_id: int | None
    resource_name: str | None
    resource_id: int | None
    event_type: str | None
    occurred_at: datetime | None
    received_at: datetime
    claimed_at: datetime

    @property
    def is_delete(self) -> bool:
        return self.event_type == "delete"


@dataclass(slots=True)
class Target:
    """One resource of a batch and the events it serves."""

    company_id: int
    resource_name: str
    resource_id: int
    project_id: int | None
    delete: bool
    events: list[Claimed] = field(default_factory=list)
    credential: CredentialRef | None = None
    credential_recorded: bool = True
    verdict: gates.GateVerdict = gates.OPEN
    outcome: Outcome | None = None
    snapshot: mirror.Snapshot | None = None
    # The show endpoint called (the gates' probes ask it again).
    path: str | None = None
    # A delete that Procore confirmed (its show answered 404 or 410).
    delete_confirmed: bool = False

    @property
    def work(self) -> Work:
        return Work(
            self.company_id,
            self.project_id,
            self.resource_name,
            None if self.credential is None else self.credential.id,
        )


@dataclass(slots=True)
class Result:
    event: Claimed
    decision: Decision
    credential_id: int | None = None
    gate_id: int | None = None
    parked: bool = False


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.retry_base_seconds,
        cap_seconds=settings.retry_cap_seconds,
        max_attempts=settings.retry_max_attempts,
        rate_limit_jitter_seconds=settings.rate_limit_jitter_seconds,
    )


async def process_batch(deps: EventsDeps, event_ids: Sequence[int]) -> int:
    """Claim and process a batch of events; returns how many reached a final state."""
    claimed = await _claim(deps, event_ids)
    if not claimed:
        return 0
    try:
        return await _process(deps, claimed)
    except _INFRASTRUCTURE:
        raise  # Postgres, Redis or the network: the leases make the events due again
    except Exception as exc:
        # A defect, not the infrastructure: find the event that triggers it.
        return await _isolate(deps, claimed, exc)


# Failures of what the service stands on. Anything else escaping a batch is a defect that one
# event triggers every time (a poison event): retried forever it would hold its batch-mates.
_INFRASTRUCTURE = (SQLAlchemyError, RedisError, OSError, httpx.HTTPError)

_RELEASE_CLAIMED = text(
    """
    UPDATE events SET status = 'retrying', locked_until = NULL
    WHERE id = ANY(CAST(:ids AS bigint[])) AND claims = ANY(CAST(:claims AS int[]))
      AND status = 'processing'
    RETURNING id
    """
)

_POISONED = text(
    """
    UPDATE events SET status = 'dead', locked_until = NULL, finished_at = now(),
        last_error = :error
    WHERE id = :id AND claims = :claims AND status = 'processing'
    RETURNING id
    """
)


async def _isolate(deps: EventsDeps, claimed: Sequence[Claimed], exc: Exception) -> int:
    """A batch failed on a defect: find the event that causes it by processing the batch's
    events one by one; the one that fails alone ends `dead` with the error (replayable once
    the defect is fixed), and the others are processed normally."""
    if len(claimed) == 1:
        event = claimed[0]
        error = f"internal error: {type(exc).__name__}: {exc}"[:500]
        log.error("events.poison", event_id=event.id, error=error, exc_info=exc)
        async with deps.sessions() as session, session.begin():
            dead = (
                await session.execute(
                    _POISONED, {"id": event.id, "claims": event.claims, "error": error}
                )
            ).first()
        if dead is None:
            return 0
        metrics.event_finished("dead", None)
        return 1
    log.warning("events.batch_failed", events=len(claimed), error=f"{type(exc).__name__}: {exc}")
    async with deps.sessions() as session, session.begin():
        released = (
            await session.execute(
                _RELEASE_CLAIMED,
                {"ids": [e.id for e in claimed], "claims": [e.claims for e in claimed]},
            )
        ).scalars()
        ids = sorted(released)
    finished = 0
    for event_id in ids:
        finished += await process_batch(deps, [event_id])
    return finished


async def _process(deps: EventsDeps, claimed: Sequence[Claimed]) -> int:
    targets, unservable = coalesce(claimed)
    await _resolve(deps, targets)
    semaphore = asyncio.Semaphore(deps.settings.process_concurrency)
    # Targets not started by then are deferred, so a batch ends well inside its lease.
    deadline = time.monotonic() + deps.settings.processing_lease_seconds / 2
    calls: list[CallRecord] = []
    await asyncio.gather(*(_serve(deps, t, semaphore, calls, deadline) for t in targets))
    results = _decide(deps.settings, targets, unservable)
    written = await _apply(deps, targets, results, calls)
    finished = _count(claimed, written)
    log.debug("events.batch_done", claimed=len(claimed), finished=finished, calls=len(calls))
    return finished


_FINAL = frozenset({EventStatus.DONE.value, EventStatus.SKIPPED.value, EventStatus.DEAD.value})


def _count(claimed: Sequence[Claimed], written: Sequence[tuple[int, str]]) -> int:
    """Metrics for the events this job wrote; returns how many of them are final."""
    received = {e.id: e.received_at for e in claimed}
    companies = {e.id: e.company_id for e in claimed}
    now = datetime.now(UTC)
    finished = 0
    waiting: dict[str, int] = {}
    for event_id, status in written:
        # One line per event: at debug when it simply finished, else at info.
        (log.debug if status == EventStatus.DONE.value else log.info)(
            "event.processed", event_id=event_id, company_id=companies.get(event_id), status=status
        )
        if status in _FINAL:
            finished += 1
            lag = (now - received[event_id]).total_seconds() if event_id in received else None
            metrics.event_finished(cast(metrics.JobOutcome, status), lag)
        else:
            waiting[status] = waiting.get(status, 0) + 1
    for status, count in waiting.items():
        metrics.job_outcome(cast(metrics.JobOutcome, status), count)
    return finished


async def _claim(deps: EventsDeps, event_ids: Sequence[int]) -> list[Claimed]:
    async with deps.sessions() as session, session.begin():
        rows = await session.execute(
            _CLAIM,
            {"ids": list(event_ids), "lease": deps.settings.processing_lease_seconds},
        )
        return [Claimed(*row) for row in rows.all()]


def coalesce(claimed: Sequence[Claimed]) -> tuple[list[Target], list[Claimed]]:
    """Group events by the resource they name; events naming nothing servable are apart."""
    targets: dict[tuple[int, str, int, bool], Target] = {}
    unservable: list[Claimed] = []
    for event in claimed:
        if event.resource_id is None or not resources.is_supported(event.resource_name):
            unservable.append(event)
            continue
        assert event.resource_name is not None
        key = (event.company_id, event.resource_name, event.resource_id, event.is_delete)
        target = targets.get(key)
        if target is None:
            target = targets[key] = Target(
                event.company_id,
                event.resource_name,
                event.resource_id,
                event.project_id,
                event.is_delete,
            )
        elif target.project_id is None:
            target.project_id = event.project_id
        target.events.append(event)
    return list(targets.values()), unservable


async def _resolve(deps: EventsDeps, targets: Sequence[Target]) -> None:
    """Which credential serves each target, and may its scope be called (gates)."""
    tokens = deps.procore.tokens
    verdicts: dict[Work, gates.GateVerdict] = {}
    async with deps.sessions() as session:
        for target in targets:
            target.credential, target.credential_recorded = await tokens.credential_for(
                target.company_id
            )
            work = target.work
            if work not in verdicts:
                verdicts[work] = await gates.verdict(session, work)
            target.verdict = verdicts[work]
            if target.verdict.opened_at is not None:
                deps.guard.gate_opened(target.verdict.opened_at, work)
        await session.commit()


async def _serve(
    deps: EventsDeps,
    target: Target,
    semaphore: asyncio.Semaphore,
    calls: list[CallRecord],
    deadline: float,
) -> None:
    # Each target is served in a task of its own: what it logs names its event and company.
    bind_contextvars(event_id=target.events[0].id, company_id=target.company_id)
    if not target.verdict.open:
        return
    guard = deps.guard
    # The company lock first: waiting for it must not hold one of the batch's call slots.
    async with guard.calling(target.company_id), semaphore:
        if time.monotonic() > deadline:
            target.outcome = DEFERRED
            return
        if guard.held(target.work):
            target.outcome = HELD
            return
        try:
            await _fetch(deps, target, calls)
        except Exception as exc:
            # A bug or an outage of ours must not sink the batch: retry this one later.
            log.exception("events.fetch_failed", company_id=target.company_id)
            target.outcome = Outcome(OutcomeKind.TRANSIENT, None, f"internal: {type(exc).__name__}")
        _confirm_delete(target)
        if target.outcome is not None:
            if target.outcome.kind is OutcomeKind.OK:
                guard.succeeded(target.work)
            else:
                guard.refused(target.work, target.outcome)


# Procore's answers that confirm a resource is gone.
DELETE_CONFIRMED = frozenset({404, 410})


def _confirm_delete(target: Target) -> None:
    """A delete is applied only when Procore's show confirms it; a 2xx has refreshed the
    mirror (the snapshot) and any other answer is handled as for a fetch."""
    outcome = target.outcome
    if not target.delete or outcome is None or outcome.status not in DELETE_CONFIRMED:
        return
    target.delete_confirmed = True
    target.outcome = Outcome(
        OutcomeKind.OK, outcome.status, f"deletion confirmed by Procore ({outcome.status})"
    )


async def _fetch(deps: EventsDeps, target: Target, calls: list[CallRecord]) -> None:
    if target.credential is None:
        target.outcome = Outcome(
            OutcomeKind.UNAUTHORIZED,
            None,
            f"no credential serves company {target.company_id}: set PROCORE_CLIENT_ID/"
            "PROCORE_CLIENT_SECRET or connect a user",
        )
        return
    kind = resources.REGISTRY[target.resource_name]
    try:
        path = resources.show_path(
            kind,
            target.resource_id,
            company_id=target.company_id,
            project_id=target.project_id,
        )
    except resources.MissingProject as exc:
        target.outcome = Outcome(OutcomeKind.REJECTED, None, str(exc))
        return
    target.path = path
    answer = await deps.procore.get(
        path,
        credential=target.credential,
        company_id=target.company_id,
        project_id=target.project_id,
        event_id=target.events[0].id,
        calls=calls,
        shared=True,
    )
    target.outcome = answer.outcome
    if answer.outcome.kind is not OutcomeKind.OK:
        return
    try:
        body = mirror.resource_body(kind, answer.json(), target.resource_id)
    except orjson.JSONDecodeError:
        body = None
    if body is mirror.Absent.NOT_LISTED:
        # A list filtered by the id answered without it: as a show's 404 would.
        target.outcome = Outcome(OutcomeKind.NOT_FOUND, 404, f"{kind.name} not in its list")
        return
    if body is None:
        target.outcome = Outcome(
            OutcomeKind.TRANSIENT, answer.outcome.status, "answer is not a resource object"
        )
        return
    target.snapshot = mirror.Snapshot(
        company_id=target.company_id,
        resource_name=target.resource_name,
        resource_id=target.resource_id,
        project_id=target.project_id,
        data=body,
        procore_updated_at=mirror.procore_updated_at(body, kind.updated_field),
        fetched_at=datetime.fromtimestamp(answer.sent_at, UTC),
    )


def _decide(
    settings: Settings, targets: Sequence[Target], unservable: Sequence[Claimed]
) -> list[Result]:
    policy = retry_policy(settings)
    now = time.time()
    results: list[Result] = []
    for event in unservable:
        why = (
            "event names no resource id"
            if event.resource_id is None
            else f"resource {event.resource_name!r} is not supported"
        )
        decision = decide(
            Outcome(OutcomeKind.REJECTED, None, why),
            attempts=event.attempts,
            policy=policy,
            now=now,
            rng=_rng,
        )
        results.append(Result(event, decision))
    for target in targets:
        credential_id = None if target.credential is None else target.credential.id
        for event in target.events:
            if not target.verdict.open:
                parked = Decision(
                    EventStatus.PARKED, event.attempts, None, None, target.verdict.reason
                )
                results.append(
                    Result(event, parked, credential_id, target.verdict.gate_id, parked=True)
                )
                continue
            outcome = target.outcome or Outcome(OutcomeKind.TRANSIENT, None, "not served")
            decision = decide(outcome, attempts=event.attempts, policy=policy, now=now, rng=_rng)
            results.append(Result(event, decision, credential_id))
    return results


async def _apply(
    deps: EventsDeps, targets: Sequence[Target], results: Sequence[Result], calls: list[CallRecord]
) -> list[tuple[int, str]]:
    for attempt in range(1, TRANSACTION_TRIES + 1):
        try:
            async with deps.sessions() as session, session.begin():
                return await _apply_once(session, deps.settings, targets, results, calls)
        except DBAPIError as exc:
            sqlstate = retryable(exc)
            if sqlstate is None or attempt == TRANSACTION_TRIES:
                raise
            log.warning("events.apply_retry", sqlstate=sqlstate, attempt=attempt)
    raise AssertionError("unreachable")


async def _apply_once(
    session: AsyncSession,
    settings: Settings,
    targets: Sequence[Target],
    results: Sequence[Result],
    calls: Sequence[CallRecord],
) -> list[tuple[int, str]]:
    fetched = [t for t in targets if t.snapshot is not None]
    await mirror.upsert(session, [t.snapshot for t in fetched if t.snapshot is not None])
    await mirror.soft_delete(
        session,
        [
            mirror.Deletion(
                t.company_id,
                t.resource_name,
                t.resource_id,
                t.project_id,
                _deleted_at(t.events),
            )
            for t in targets
            if t.delete_confirmed
        ],
    )
    written = await _update_events(session, results)
    if fetched:
        await session.execute(
            _SERVE_PENDING,
            {
                "company_id": [t.company_id for t in fetched],
                "resource_name": [t.resource_name for t in fetched],
                "resource_id": [t.resource_id for t in fetched],
                "as_of": [min(e.claimed_at for e in t.events) for t in fetched],
                "credential_id": [t.credential.id if t.credential else None for t in fetched],
            },
        )
    proofs = {
        (t.company_id, t.credential.id)
        for t in fetched
        if t.credential is not None and not t.credential_recorded
    }
    if proofs:
        await session.execute(
            _RECORD_PROOF,
            {
                "company_id": [company for company, _ in sorted(proofs)],
                "credential_id": [credential for _, credential in sorted(proofs)],
            },
        )
    await gates.record_outcomes(
        session,
        settings,
        [
            gates.ScopeOutcome(t.work, t.outcome, t.path)
            # A confirmed delete's 404 says the resource is gone, not that access is lost.
            for t in targets
            if t.outcome is not None and not t.delete_confirmed
        ],
    )
    await record_calls(session, calls)
    return written


async def _update_events(session: AsyncSession, results: Sequence[Result]) -> list[tuple[int, str]]:
    """Write each event's decision, fenced by its claim; returns (id, status) written."""
    if not results:
        return []
    rows = sorted(results, key=lambda r: r.event.id)
    answer = await session.execute(
        _APPLY,
        {
            "id": [r.event.id for r in rows],
            "claims": [r.event.claims for r in rows],
            "status": [r.decision.status.value for r in rows],
            "attempts": [r.decision.attempts for r in rows],
            "delay": [r.decision.delay for r in rows],
            "last_status": [r.decision.last_status for r in rows],
            "last_error": [r.decision.last_error for r in rows],
            "final": [r.decision.final and not r.parked for r in rows],
            "credential_id": [r.credential_id for r in rows],
            "gate_id": [r.gate_id for r in rows],
        },
    )
    return [(int(event_id), str(status)) for event_id, status in answer.all()]


def _deleted_at(events: Sequence[Claimed]) -> datetime:
    """When the resource was deleted: the body's timestamp, never later than the delivery was
    received. A body's clock is a claim; unbounded, a far-future date would outrank every
    later real update of the resource (the mirror's newest-wins compares against it)."""
    return max(
        min(e.occurred_at, e.received_at)
        if e.occurred_at is not None and e.occurred_at.tzinfo is not None
        else e.received_at
        for e in events
    )
