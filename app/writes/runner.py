"""Running write jobs: one company's lane at a time, in submission order.

1. Claim the head of the company's lane: the due jobs from its oldest unfinished one, in id
   order, up to WRITE_LANE_BATCH_SIZE (status `running`, `claims + 1`, a lease). Claims of one
   company are serialised by an advisory lock, and a lane whose batch is running is busy, so
   a company is written to by one worker at a time, in order.
2. Gates: each scope (credential, company, project) is asked once (`gates.verdict`); the jobs
   of a held scope are parked under the gate's id without a call.
3. The calls (`policy.plan`) are made one after the other through the one Procore client
   (tokens, the shared rate budget, classification). Before a plain call is sent its
   `sent_at` is committed: found set by a later claim, the answer was lost.
4. After each call, one transaction: the jobs' new states (fenced by `claims`: a worker whose
   lease ran out cannot overwrite a newer claim), the mirror from Procore's answer, the gate
   outcome, the call audit and the published outcomes (app.writes.outcomes).
5. A call whose jobs must wait (a retry, a gate signal, a rate limit) ends the batch: the jobs
   behind it go back to the queue untried, so the lane keeps its order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.db import SessionFactory
from app.events import mirror
from app.events.service import retry_policy
from app.gates import service as gates
from app.gates.scopes import Work
from app.logs import get_logger
from app.models import JobStatus
from app.procore.answers import EXCERPT_CHARS, Outcome, OutcomeKind
from app.procore.calls import CallRecord, Purpose, record_calls
from app.procore.client import Answer, ProcoreClient
from app.procore.tokens import CredentialRef
from app.registry import resources
from app.settings import Settings
from app.writes import outcomes, policy
from app.writes.policy import Call, Decision, Job

log = get_logger(__name__)


class WritesDeps(Protocol):
    """What running a company's lane of write jobs uses. The edges pass the process's Runtime,
    which has all of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    procore: ProcoreClient


_rng = random.Random()

# Failures of what the service stands on: the leases make the jobs due again.
_INFRASTRUCTURE = (SQLAlchemyError, RedisError, OSError, httpx.HTTPError)

# Procore's answer kept per job (the resource, or its error): bounded.
ANSWER_MAX_BYTES = 16 * 1024

_LANE_LOCK = text(
    """
    SELECT pg_advisory_xact_lock(
        hashtextextended('write-lane:' || CAST(CAST(:company_id AS bigint) AS text), 0)
    )
    """
)

_BUSY = text(
    """
    SELECT 1 FROM write_jobs
    WHERE company_id = :company_id AND status = 'running' AND locked_until > now()
    LIMIT 1
    """
)

_LANE = text(
    """
    SELECT id, next_attempt_at <= now() AS due FROM write_jobs
    WHERE company_id = :company_id AND status IN ('queued', 'retrying', 'running')
    ORDER BY id
    LIMIT :limit
    """
)

_CLAIM = text(
    """
    UPDATE write_jobs SET status = 'running', claims = claims + 1,
        locked_until = now() + make_interval(secs => :lease)
    WHERE id = ANY(CAST(:ids AS bigint[]))
    RETURNING id, claims, attempts, company_id, project_id, resource_name, operation,
        resource_id, origin_id, payload, sent_at, created_at
    """
)

_MARK_SENT = text(
    """
    UPDATE write_jobs SET sent_at = now()
    WHERE id = :id AND claims = :claims AND status = 'running'
    RETURNING id
    """
)

_UNCLAIM = text(
    """
    UPDATE write_jobs j SET status = 'queued', locked_until = NULL
    FROM unnest(CAST(:id AS bigint[]), CAST(:claims AS int[])) AS v(id, claims)
    WHERE j.id = v.id AND j.claims = v.claims AND j.status = 'running'
    """
)

_APPLY = text(
    """
    UPDATE write_jobs j SET
        status = v.status,
        attempts = v.attempts,
        next_attempt_at = CASE
            WHEN v.delay IS NULL THEN j.next_attempt_at
            ELSE now() + make_interval(secs => v.delay)
        END,
        locked_until = NULL,
        last_status = v.last_status,
        last_error = v.last_error,
        answer = COALESCE(CAST(v.answer AS jsonb), j.answer),
        resource_id = COALESCE(v.resource_id, j.resource_id),
        sent_at = CASE WHEN v.keep_sent THEN j.sent_at END,
        finished_at = CASE WHEN v.final THEN now() END,
        credential_id = COALESCE(v.credential_id, j.credential_id),
        gate_id = v.gate_id
    FROM unnest(
        CAST(:id AS bigint[]), CAST(:claims AS int[]), CAST(:status AS text[]),
        CAST(:attempts AS int[]), CAST(:delay AS float8[]), CAST(:last_status AS int[]),
        CAST(:last_error AS text[]), CAST(:answer AS text[]), CAST(:resource_id AS bigint[]),
        CAST(:keep_sent AS boolean[]), CAST(:final AS boolean[]),
        CAST(:credential_id AS bigint[]), CAST(:gate_id AS bigint[])
    ) AS v(id, claims, status, attempts, delay, last_status, last_error, answer, resource_id,
           keep_sent, final, credential_id, gate_id)
    WHERE j.id = v.id AND j.claims = v.claims AND j.status = 'running'
    RETURNING j.id, j.company_id, j.project_id, j.resource_name, j.operation, j.origin_id,
        j.idempotency_key, j.status, j.resource_id, j.gate_id
    """
)


async def run_lane(deps: WritesDeps, company_id: int) -> int:
    """Run the company's due jobs, batch after batch, while its lane has due work and the
    time allows; returns how many jobs reached a final state."""
    budget = deps.settings.processing_lease_seconds / 2
    started = time.monotonic()
    finished = 0
    while time.monotonic() - started < budget:
        batch = await claim(deps, company_id)
        if not batch:
            break
        finished += await _run(deps, company_id, batch)
    return finished


async def claim(deps: WritesDeps, company_id: int) -> list[Job]:
    """The head of the company's lane, claimed; empty if the lane is busy or not due."""
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
        await session.execute(_LANE_LOCK, {"company_id": company_id})
        if (await session.execute(_BUSY, {"company_id": company_id})).first() is not None:
            return []
        lane = (
            await session.execute(
                _LANE, {"company_id": company_id, "limit": settings.write_lane_batch_size}
            )
        ).all()
        ids: list[int] = []
        for row in lane:
            if not row.due:
                break  # the lane waits for its head (a retry), and keeps its order
            ids.append(int(row.id))
        if not ids:
            return []
        rows = await session.execute(
            _CLAIM, {"ids": ids, "lease": settings.processing_lease_seconds}
        )
        claimed = [_job(row) for row in rows]
    return sorted(claimed, key=lambda j: j.id)


def _job(row: Any) -> Job:
    return Job(
        id=int(row.id),
        claims=int(row.claims),
        attempts=int(row.attempts),
        company_id=int(row.company_id),
        project_id=None if row.project_id is None else int(row.project_id),
        resource_name=str(row.resource_name),
        operation=resources.WriteKind(row.operation),
        resource_id=None if row.resource_id is None else int(row.resource_id),
        origin_id=row.origin_id,
        payload=row.payload,
        sent_at=row.sent_at,
        submitted_at=row.created_at,
    )


@dataclass(slots=True)
class _Context:
    deps: WritesDeps
    company_id: int
    credential: CredentialRef | None
    deadline: float

    @property
    def credential_id(self) -> int | None:
        return None if self.credential is None else self.credential.id


async def _run(deps: WritesDeps, company_id: int, batch: Sequence[Job]) -> int:
    settings = deps.settings
    credential, _ = await deps.procore.tokens.credential_for(company_id)
    ctx = _Context(
        deps, company_id, credential, time.monotonic() + settings.processing_lease_seconds / 2
    )
    verdicts: dict[Work, gates.GateVerdict] = {}
    async with deps.sessions() as session:
        for work in dict.fromkeys(_work(ctx, j) for j in batch):
            verdicts[work] = await gates.verdict(session, work)
        await session.commit()
    held = [j for j in batch if not verdicts[_work(ctx, j)].open]
    runnable = [j for j in batch if verdicts[_work(ctx, j)].open]
    finished = 0
    if held:
        await _park(ctx, held, verdicts)
    untried = {j.id: j for j in runnable}
    for call in policy.plan(runnable, sync_batch=settings.write_sync_batch_size):
        if time.monotonic() > ctx.deadline:
            break
        try:
            served = await _serve(ctx, call)
        except _INFRASTRUCTURE:
            raise
        except Exception as exc:
            # A defect one call triggers every time must not hold the company's lane.
            log.exception("write_jobs.call_failed", job_id=call.first.id, company_id=company_id)
            served = _Served({j.id: _internal_error(j, exc) for j in call.jobs})
            await _apply(ctx, call.jobs, served.decisions, None, [], None)
        for job in call.jobs:
            untried.pop(job.id, None)
        decisions = served.decisions
        finished += sum(1 for d in decisions.values() if d.final)
        if (
            served.signal
            or len(decisions) < len(call.jobs)
            or any(policy.holds_lane(d) for d in decisions.values())
        ):
            # A gate signal may have parked the scope: the next claim asks the gates again.
            break
    if untried:
        await _unclaim(deps, list(untried.values()))
    return finished


def _internal_error(job: Job, exc: Exception) -> Decision:
    why = f"internal error: {type(exc).__name__}: {exc}"[:500]
    if job.operation is resources.WriteKind.CREATE and not job.synced:
        return policy.in_doubt(job, why + " (the create may have been sent: check and resolve)")
    return Decision(JobStatus.FAILED, job.attempts, None, None, why + " (replay once fixed)")


@dataclass(frozen=True, slots=True)
class _Served:
    # Each job's decision (a job missing from it was not tried).
    decisions: dict[int, Decision]
    # The answer was a signal for the gates (401, 403, a 404 in a project).
    signal: bool = False


async def _serve(ctx: _Context, call: Call) -> _Served:
    """Make one call (after a look-up, for a create in doubt)."""
    deps = ctx.deps
    job = call.first
    if ctx.credential is None:
        refused = Outcome(
            OutcomeKind.UNAUTHORIZED,
            None,
            f"no credential serves company {ctx.company_id}: set PROCORE_CLIENT_ID/"
            "PROCORE_CLIENT_SECRET or connect a user",
        )
        return await _answered(ctx, call, Answer(refused), [])
    if not call.synced and job.in_doubt:
        settled = await _look_up(ctx, job)
        if settled is not None:
            return settled
    if not call.synced and not await _mark_sent(deps, job):
        return _Served({})  # the claim was lost (lease ran out): another run owns the job now
    records: list[CallRecord] = []
    path, body = _request(call)
    answer = await deps.procore.request(
        call.call.method,
        path,
        credential=ctx.credential,
        company_id=ctx.company_id,
        project_id=job.project_id,
        json=body,
        calls=records,
        purpose=Purpose.WRITE,
    )
    return await _answered(ctx, call, answer, records)


def _request(call: Call) -> tuple[str, dict[str, Any] | None]:
    job = call.first
    path = resources.write_path(
        call.call,
        resource_id=job.resource_id,
        company_id=job.company_id,
        project_id=job.project_id,
    )
    if call.synced:
        items = [j.sync_item() for j in call.jobs]
        body: dict[str, Any] | None = resources.sync_body(
            call.call, items, company_id=job.company_id, project_id=job.project_id
        )
    else:
        body = resources.write_body(
            call.call, job.payload, company_id=job.company_id, project_id=job.project_id
        )
    return path, body


async def _answered(
    ctx: _Context, call: Call, answer: Answer, records: list[CallRecord]
) -> _Served:
    settings = ctx.deps.settings
    outcome = answer.outcome
    body = _parsed(answer)
    items: dict[int, policy.Item] = {}
    if call.synced and outcome.kind is OutcomeKind.OK:
        read = policy.read_sync(call.jobs, body)
        if read is None:
            outcome = Outcome(OutcomeKind.TRANSIENT, outcome.status, "not a sync answer")
        else:
            items = read
    decisions = {
        job.id: policy.decide(
            job,
            outcome,
            body=body,
            item=items.get(job.id),
            policy=retry_policy(settings),
            lost_answer_delay=settings.procore_timeout_seconds,
            now=time.time(),
            rng=_rng,
        )
        for job in call.jobs
    }
    await _apply(ctx, call.jobs, decisions, outcome, records, answer)
    return _Served(decisions, _signals(outcome, call.first))


def _signals(outcome: Outcome, job: Job) -> bool:
    """Whether the gates count this answer (as app.gates.service sorts them)."""
    if outcome.is_gate_signal:
        return True
    return outcome.kind is OutcomeKind.NOT_FOUND and job.project_id is not None


async def _look_up(ctx: _Context, job: Job) -> _Served | None:
    """A create whose answer was lost: find what it made, or settle that it made nothing
    (None: send it again), or leave it to an operator."""
    kind = job.kind
    lookup = kind.writes.lookup if kind.writes is not None else None
    if lookup is None or not policy.can_look_up(job):
        why = (
            f"the answer to this create was lost and Procore offers no way to find what it made "
            f"({kind.name} carry no key of ours): check the project, then resolve the job"
        )
        decision = policy.in_doubt(job, why)
        await _apply(ctx, [job], {job.id: decision}, None, [], None)
        return _Served({job.id: decision})
    assert ctx.credential is not None
    value = str((job.payload or {})[lookup.field])
    path = resources.lookup_path(
        lookup, value, company_id=job.company_id, project_id=job.project_id
    )
    records: list[CallRecord] = []
    answer = await ctx.deps.procore.request(
        "GET",
        path,
        credential=ctx.credential,
        company_id=ctx.company_id,
        project_id=job.project_id,
        calls=records,
        purpose=Purpose.LOOKUP,
    )
    outcome = answer.outcome
    if outcome.kind is OutcomeKind.OK:
        found = policy.matches(_parsed(answer), lookup, job.payload or {})
        if not found:
            log.info("write_job.lookup_none", job_id=job.id, field=lookup.field)
            await _apply(ctx, [job], {}, outcome, records, answer)
            return None
        if len(found) == 1:
            decision = policy.found_by_lookup(job, found[0], outcome.status)
        else:
            decision = policy.in_doubt(
                job,
                f"the answer to this create was lost and {len(found)} {kind.name} have "
                f"{lookup.field} {value!r}: check which is ours, then resolve the job",
            )
    else:
        decision = policy.decide(
            job,
            outcome,
            body=_parsed(answer),
            item=None,
            policy=retry_policy(ctx.deps.settings),
            lost_answer_delay=ctx.deps.settings.procore_timeout_seconds,
            now=time.time(),
            rng=_rng,
        )
        # The create may still have happened: whatever the look-up met, it is not sent again
        # blindly; a refusal of the look-up itself is an operator's to settle.
        if decision.final:
            decision = policy.in_doubt(job, f"looking it up failed: {decision.last_error}")
        decision = replace(decision, keep_sent=True)
    await _apply(ctx, [job], {job.id: decision}, outcome, records, answer)
    return _Served({job.id: decision}, _signals(outcome, job))


def _parsed(answer: Answer) -> Any:
    if not answer.body:
        return None
    try:
        return answer.json()
    except orjson.JSONDecodeError:
        return answer.body.decode("utf-8", "replace")[:EXCERPT_CHARS]


async def _mark_sent(deps: WritesDeps, job: Job) -> bool:
    async with deps.sessions() as session, session.begin():
        row = (await session.execute(_MARK_SENT, {"id": job.id, "claims": job.claims})).first()
    return row is not None


async def _unclaim(deps: WritesDeps, jobs: Sequence[Job]) -> None:
    async with deps.sessions() as session, session.begin():
        await session.execute(
            _UNCLAIM, {"id": [j.id for j in jobs], "claims": [j.claims for j in jobs]}
        )


def _work(ctx: _Context, job: Job) -> Work:
    return Work(ctx.company_id, job.project_id, job.resource_name, ctx.credential_id)


async def _park(
    ctx: _Context, jobs: Sequence[Job], verdicts: dict[Work, gates.GateVerdict]
) -> None:
    decisions = {j.id: replace(policy.parked(j), last_error=verdicts[_work(ctx, j)].reason)
                 for j in jobs}  # fmt: skip
    gate_ids = {j.id: verdicts[_work(ctx, j)].gate_id for j in jobs}
    await _apply(ctx, jobs, decisions, None, [], None, gate_ids=gate_ids)


async def _apply(
    ctx: _Context,
    jobs: Sequence[Job],
    decisions: dict[int, Decision],
    outcome: Outcome | None,
    records: Sequence[CallRecord],
    answer: Answer | None,
    *,
    gate_ids: dict[int, int | None] | None = None,
) -> None:
    """Everything one call led to, in one transaction."""
    deps = ctx.deps
    async with deps.sessions() as session, session.begin():
        written = await _write(session, ctx, jobs, decisions, gate_ids or {})
        fetched_at = datetime.fromtimestamp(answer.sent_at, UTC) if answer else datetime.now(UTC)
        await _mirror(session, jobs, decisions, fetched_at)
        if outcome is not None and jobs:
            job = jobs[0]
            await gates.record_outcomes(
                session,
                deps.settings,
                [
                    gates.ScopeOutcome(_work(ctx, job), outcome, _probe_path(job))
                ],
            )  # fmt: skip
        await record_calls(session, records)
        await outcomes.emit(session, _published(written, decisions))
    for row in written:
        metrics.write_jobs(row.status)
        (log.debug if row.status == JobStatus.SUCCEEDED.value else log.info)(
            "write_job.ran",
            job_id=row.id,
            company_id=row.company_id,
            status=row.status,
            http_status=decisions[row.id].last_status,
        )


def _probe_path(job: Job) -> str:
    """What the gates' probes ask again for this scope: a read of the same tool (a probe
    never writes)."""
    paths = resources.list_paths(job.kind, company_id=job.company_id, project_id=job.project_id)
    return paths[0]


@dataclass(frozen=True, slots=True)
class _Written:
    id: int
    company_id: int
    project_id: int | None
    resource_name: str
    operation: str
    origin_id: str | None
    idempotency_key: str
    status: str
    resource_id: int | None
    gate_id: int | None


async def _write(
    session: AsyncSession,
    ctx: _Context,
    jobs: Sequence[Job],
    decisions: dict[int, Decision],
    gate_ids: dict[int, int | None],
) -> list[_Written]:
    rows = [j for j in sorted(jobs, key=lambda j: j.id) if j.id in decisions]
    if not rows:
        return []
    result = await session.execute(
        _APPLY,
        {
            "id": [j.id for j in rows],
            "claims": [j.claims for j in rows],
            "status": [decisions[j.id].status.value for j in rows],
            "attempts": [decisions[j.id].attempts for j in rows],
            "delay": [decisions[j.id].delay for j in rows],
            "last_status": [decisions[j.id].last_status for j in rows],
            "last_error": [_cut(decisions[j.id].last_error) for j in rows],
            "answer": [_stored(decisions[j.id].answer) for j in rows],
            "resource_id": [decisions[j.id].resource_id for j in rows],
            "keep_sent": [decisions[j.id].keep_sent for j in rows],
            "final": [decisions[j.id].final for j in rows],
            "credential_id": [ctx.credential_id for _ in rows],
            "gate_id": [gate_ids.get(j.id) for j in rows],
        },
    )
    return [
        _Written(
            int(r.id),
            int(r.company_id),
            None if r.project_id is None else int(r.project_id),
            str(r.resource_name),
            str(r.operation),
            r.origin_id,
            str(r.idempotency_key),
            str(r.status),
            None if r.resource_id is None else int(r.resource_id),
            None if r.gate_id is None else int(r.gate_id),
        )
        for r in result
    ]


async def _mirror(
    session: AsyncSession,
    jobs: Sequence[Job],
    decisions: dict[int, Decision],
    fetched_at: datetime,
) -> None:
    """Procore's answer is the resource as it now is: the mirror takes it (newest wins)."""
    snapshots: list[mirror.Snapshot] = []
    deletions: list[mirror.Deletion] = []
    for job in jobs:
        decision = decisions.get(job.id)
        if decision is None or decision.status is not JobStatus.SUCCEEDED:
            continue
        project_id = None if job.kind.company_level else job.project_id
        if decision.deleted and decision.resource_id is not None:
            deletions.append(
                mirror.Deletion(
                    job.company_id, job.resource_name, decision.resource_id, project_id, fetched_at
                )
            )
        elif decision.entity is not None and decision.resource_id is not None:
            snapshots.append(
                mirror.Snapshot(
                    company_id=job.company_id,
                    resource_name=job.resource_name,
                    resource_id=decision.resource_id,
                    project_id=project_id,
                    data=decision.entity,
                    procore_updated_at=mirror.procore_updated_at(
                        decision.entity, job.kind.updated_field
                    ),
                    fetched_at=fetched_at,
                )
            )
    # One row per resource: the last job's answer is the newest.
    await mirror.upsert(session, list({s.key: s for s in snapshots}.values()))
    await mirror.soft_delete(session, list({d.key: d for d in deletions}.values()))


def _published(
    written: Sequence[_Written], decisions: dict[int, Decision]
) -> list[outcomes.Outcome]:
    published: list[outcomes.Outcome] = []
    for row in written:
        kind = outcomes.BY_STATUS.get(JobStatus(row.status))
        if kind is None:
            continue
        decision = decisions[row.id]
        detail: dict[str, Any] = {"http_status": decision.last_status}
        if row.gate_id is not None:
            detail["gate_id"] = row.gate_id
        if decision.last_error:
            detail["reason"] = _cut(decision.last_error)
        published.append(outcomes.of(row, kind, **detail))
    return published


def _cut(value: str | None) -> str | None:
    return None if value is None else value[:2000]


def _stored(answer: dict[str, Any] | None) -> str | None:
    if answer is None:
        return None
    raw = orjson.dumps(answer)
    if len(raw) <= ANSWER_MAX_BYTES:
        return raw.decode()
    excerpt = raw[: ANSWER_MAX_BYTES - 64].decode("utf-8", "ignore")
    return orjson.dumps({"excerpt": excerpt, "truncated": True}).decode()
