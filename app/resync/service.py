"""Run a resync: list each part page by page and reconcile the mirror, resumably.

A run is leased (`locked_until`) by the worker running it, and every page is written in one
transaction with the cursor that says it was written: a worker killed mid-run leaves a
cursor that the next worker resumes from once the lease expires. A page costs one call,
paced by the shared rate budget like every other call; a 429 or a spent budget is waited
out, not counted as a failure.

Per page, only resources the mirror lacks or holds older are written (`plan.to_write`), so a
resync of an unchanged company writes nothing. When a part's last page is written, the
mirror's resources of that part that were not listed — and were not fetched since the part
began (a webhook may have brought a newer one) — are soft-deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from arq.connections import ArqRedis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.db import SessionFactory
from app.events import mirror
from app.feed import messages, outbox
from app.gates import service as gates
from app.gates.scopes import Work, holding_gate_sql
from app.logs import get_logger
from app.procore import paths, patient
from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord, Purpose, record_calls
from app.procore.client import Answer, ProcoreClient
from app.procore.patient import Failed
from app.procore.tokens import CredentialRef
from app.queue import enqueue_resync
from app.registry import resources
from app.resync import plan
from app.schedule import runs
from app.settings import Settings
from app.webhooks import intake

log = get_logger(__name__)


class ResyncDeps(Protocol):
    """What a resync run and the listings it shares use. The edges pass the process's Runtime,
    which has all of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    procore: ProcoreClient
    queue: ArqRedis


# A job hands its run back (to be resumed by the next job) after this long, well inside
# arq's job timeout.
JOB_BUDGET_SECONDS = 240.0
# A run that keeps failing for transient reasons is given up after this many claims.
MAX_CLAIMS = 8
_BACKOFF_SECONDS = 30.0

Progress = Callable[[runs.RunView], None]


# --- listing ---------------------------------------------------------------------------------


async def fetch(
    deps: ResyncDeps,
    credential: CredentialRef,
    company_id: int | None,
    path: str,
    calls: list[CallRecord],
    *,
    project_id: int | None = None,
    waits: list[float] | None = None,
) -> Answer:
    """GET one page, patiently (app.procore.patient)."""
    return await patient.request(
        deps.procore,
        "GET",
        path,
        credential=credential,
        company_id=company_id,
        calls=calls,
        project_id=project_id,
        purpose=Purpose.FETCH,
        waits=waits,
        transient_attempts=deps.settings.retry_max_attempts,
    )


async def list_all(
    deps: ResyncDeps,
    credential: CredentialRef,
    company_id: int | None,
    path: str,
    calls: list[CallRecord],
) -> list[Any] | Failed:
    """Every page of a list call, at the resync's page size."""
    return await patient.list_all(
        deps.procore,
        credential,
        company_id,
        path,
        calls,
        per_page=deps.settings.resync_page_size,
        purpose=Purpose.FETCH,
        transient_attempts=deps.settings.retry_max_attempts,
    )


async def list_projects(
    deps: ResyncDeps, credential: CredentialRef, company_id: int, calls: list[CallRecord]
) -> list[int] | Failed:
    """The projects the principal may see (a project it may not is not listed)."""
    listed = await list_all(deps, credential, company_id, paths.projects(company_id), calls)
    if isinstance(listed, Failed):
        return listed
    return sorted(int(p["id"]) for p in listed if isinstance(p, dict) and "id" in p)


# --- running a run ---------------------------------------------------------------------------


_CLAIM = text(
    """
    UPDATE resync_runs SET status = 'running', attempts = attempts + 1,
        locked_until = now() + make_interval(secs => :lease),
        started_at = COALESCE(started_at, now())
    WHERE id = :id AND status IN ('pending', 'running')
      AND (locked_until IS NULL OR locked_until < now())
    RETURNING id, company_id, project_id, resource_name, attempts, cursor
    """
)
_SAVE = text(
    """
    UPDATE resync_runs SET cursor = CAST(:cursor AS jsonb),
        locked_until = now() + make_interval(secs => :lease)
    WHERE id = :id
    """
)
_END = text(
    """
    UPDATE resync_runs SET status = CAST(:status AS text),
        locked_until = CAST(:not_before AS timestamptz), last_error = CAST(:error AS text),
        finished_at = CASE WHEN CAST(:status AS text) IN ('done', 'failed') THEN now() END,
        cursor = CAST(:cursor AS jsonb)
    WHERE id = :id
    """
)
_KNOWN = text(
    """
    SELECT resource_id, procore_updated_at, deleted_at IS NOT NULL AS deleted, data
    FROM resources
    WHERE company_id = :c AND resource_name = :rn AND resource_id = ANY(CAST(:ids AS bigint[]))
    """
)
_SEEN = text(
    """
    INSERT INTO resync_seen (run_id, part, resource_id)
    SELECT CAST(:run AS bigint), CAST(:part AS text), unnest(CAST(:ids AS bigint[]))
    ON CONFLICT DO NOTHING
    """
)
# What the mirror holds in a group's scope that no part of the group listed, and that no
# fetch refreshed since the group began (a webhook may have brought it): absent. For a dated
# type, only what falls inside the listed days can be absent.
_ABSENT = text(
    """
    SELECT r.resource_id, r.project_id FROM resources r
    WHERE r.company_id = :c AND r.resource_name = :rn AND r.deleted_at IS NULL
      AND (CAST(:p AS bigint) IS NULL OR r.project_id = CAST(:p AS bigint))
      AND r.fetched_at < CAST(:started AS timestamptz)
      AND (CAST(:day_field AS text) IS NULL
           OR (r.data ->> CAST(:day_field AS text)) BETWEEN :first_day AND :last_day)
      AND NOT EXISTS (
        SELECT 1 FROM resync_seen s
        WHERE s.run_id = :run AND s.part = :part AND s.resource_id = r.resource_id)
    ORDER BY r.resource_id
    """
)
_FORGET_SEEN = text("DELETE FROM resync_seen WHERE run_id = :run")


async def run(
    deps: ResyncDeps,
    run_id: int,
    *,
    budget_seconds: float = JOB_BUDGET_SECONDS,
    progress: Progress | None = None,
) -> runs.RunView | None:
    """Run (or resume) one resync until it ends or the budget is spent; None if it is not
    runnable now (finished, or another worker holds it)."""
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
        row = (
            await session.execute(_CLAIM, {"id": run_id, "lease": settings.resync_lease_seconds})
        ).first()
    if row is None:
        return None
    deadline = time.monotonic() + budget_seconds
    company_id, project_id = int(row.company_id), row.project_id
    cursor: dict[str, Any] = dict(row.cursor or {})
    credential, _ = await deps.procore.tokens.credential_for(company_id)
    async with deps.sessions() as session:
        verdict = await gates.verdict(
            session,
            Work(
                company_id, project_id, credential_id=None if credential is None else credential.id
            ),
        )
    if not verdict.open or credential is None:
        # Waits for the gate: the hand-off skips runs of parked scopes.
        why = verdict.reason if not verdict.open else "no credential serves this company"
        return await _end(deps, run_id, cursor, "pending", why, backoff=not verdict.open)
    if row.attempts > MAX_CLAIMS:
        return await _end(
            deps, run_id, cursor, "failed", "gave up after repeated failures", backoff=False
        )

    context = _Run(deps, run_id, company_id, credential, cursor, progress)
    if "parts" not in cursor:
        failure = await context.make_plan(row.project_id, row.resource_name)
        if failure is not None:
            return await context.stop(failure)
    for part_state in cursor["parts"]:
        while not part_state.get("done"):
            if time.monotonic() > deadline:
                # Handed back: the next tick's job resumes from the cursor.
                return await _end(deps, run_id, cursor, "running", None, backoff=False)
            failure = await context.page(part_state)
            if failure is not None:
                if failure.outcome.kind in (
                    OutcomeKind.FORBIDDEN,
                    OutcomeKind.NOT_FOUND,
                    OutcomeKind.REJECTED,
                ):
                    # This part cannot be listed (no access to the project or the tool):
                    # the rest of the run goes on.
                    part_state["done"] = True
                    part_state["error"] = f"{failure.outcome.status} {failure.outcome.message}"
                    await context.signal(failure, part_state.get("project_id"))
                    await context.save()
                    continue
                return await context.stop(failure)
    async with deps.sessions() as session, session.begin():
        await session.execute(_FORGET_SEEN, {"run": run_id})
    metrics.resync_finished("done")
    log.info("resync.done", run_id=run_id, company_id=company_id, **_summary(cursor))
    return await _end(deps, run_id, cursor, "done", None, backoff=False)


class _Run:
    """One run's state while a worker holds it."""

    def __init__(
        self,
        deps: ResyncDeps,
        run_id: int,
        company_id: int,
        credential: CredentialRef,
        cursor: dict[str, Any],
        progress: Progress | None,
    ) -> None:
        self.deps = deps
        self.run_id = run_id
        self.company_id = company_id
        self.credential = credential
        self.cursor = cursor
        self.progress = progress

    async def make_plan(self, project_id: int | None, resource_name: str | None) -> Failed | None:
        settings = self.deps.settings
        calls: list[CallRecord] = []
        projects: list[int] = []
        needs_projects = project_id is None and any(
            r not in resources.COMPANY_LEVEL
            for r in settings.sync_resources
            if resource_name in (None, r)
        )
        if needs_projects:
            listed = await list_projects(self.deps, self.credential, self.company_id, calls)
            if isinstance(listed, Failed):
                await self._record(calls)
                return listed
            projects = listed
        parts = plan.plan_parts(
            settings.sync_resources,
            projects,
            today=datetime.now(UTC).date(),
            log_days=settings.resync_log_days,
            project_id=project_id,
            resource_name=resource_name,
        )
        states = [p.to_state() for p in parts]
        for state, ends in zip(states, plan.group_ends(parts), strict=True):
            state["group_ends"] = ends
        self.cursor["parts"] = states
        self.cursor["calls"] = self.cursor.get("calls", 0) + len(calls)
        await self.save(calls)
        return None

    async def page(self, state: dict[str, Any]) -> Failed | None:
        """List the part's next page and write it, with the cursor, in one transaction."""
        settings = self.deps.settings
        part = plan.Part.of_state(state)
        page, per_page = int(state["page"]), settings.resync_page_size
        if "started" not in state:
            state["started"] = self.group_started(state)
        calls: list[CallRecord] = []
        waits: list[float] = []
        answer = await fetch(
            self.deps,
            self.credential,
            self.company_id,
            plan.page_path(part, self.company_id, page, per_page),
            calls,
            project_id=part.project_id,
            waits=waits,
        )
        self.cursor["calls"] = self.cursor.get("calls", 0) + len(calls)
        self.cursor["rate_limited"] = self.cursor.get("rate_limited", 0) + len(waits)
        if answer.outcome.kind is not OutcomeKind.OK:
            await self._record(calls)
            return Failed(f"GET {part.key} page {page}", answer.outcome)
        items = answer.json()
        if not isinstance(items, list):
            await self._record(calls)
            return Failed(part.key, Outcome(OutcomeKind.REJECTED, 200, "not a list"))
        fetched_at = datetime.fromtimestamp(answer.sent_at, UTC)
        last = plan.is_last_page(part, answer.headers, page, per_page, len(items))
        total = answer.headers.get("total") if answer.headers is not None else None
        async with self.deps.sessions() as session, session.begin():
            written = await self._write(session, part, items, fetched_at)
            # Pre-upgrade cursors have one part per group.
            ends = bool(state.get("group_ends", True))
            absent = await self._absent(session, part, state) if last and ends else 0
            state.update(
                page=page + 1,
                pages=int(state.get("pages", 0)) + 1,
                listed=int(state.get("listed", 0)) + len(items),
                written=int(state.get("written", 0)) + written,
                absent=int(state.get("absent", 0)) + absent,
                total=int(total) if total is not None and total.isdigit() else None,
                done=last,
            )
            await self._save_in(session, calls)
        metrics.resync_resources("written", written)
        metrics.resync_resources("absent", absent)
        self._report()
        return None

    def group_started(self, state: dict[str, Any]) -> str:
        """When the part's group began (its first part's start): what was fetched after it is
        newer than any list of the group."""
        for other in self.cursor["parts"]:
            if plan.Part.of_state(other).group == plan.Part.of_state(state).group:
                if "started" in other:
                    return str(other["started"])
                break
        return datetime.now(UTC).isoformat()

    async def _write(
        self, session: AsyncSession, part: plan.Part, items: Sequence[Any], fetched_at: datetime
    ) -> int:
        kind = resources.REGISTRY[part.resource_name]
        listed: list[tuple[int, datetime | None, dict[str, Any]]] = [
            (rid, mirror.procore_updated_at(item, kind.updated_field), item)
            for item in items
            if (rid := plan.listed_id(kind, item)) is not None
        ]
        if not listed:
            return 0
        ids = [rid for rid, _, _ in listed]
        rows = (
            await session.execute(
                _KNOWN, {"c": self.company_id, "rn": part.resource_name, "ids": ids}
            )
        ).all()
        known = {
            int(r.resource_id): plan.Known(r.procore_updated_at, bool(r.deleted), r.data)
            for r in rows
        }
        wanted = set(plan.to_write(listed, known))
        await mirror.upsert(
            session,
            [
                mirror.Snapshot(
                    company_id=self.company_id,
                    resource_name=part.resource_name,
                    resource_id=rid,
                    project_id=part.project_id,
                    data=data,
                    procore_updated_at=updated_at,
                    fetched_at=fetched_at,
                )
                for rid, updated_at, data in listed
                if rid in wanted
            ],
        )
        await session.execute(_SEEN, {"run": self.run_id, "part": part.group, "ids": ids})
        return len(wanted)

    async def _absent(self, session: AsyncSession, part: plan.Part, state: dict[str, Any]) -> int:
        """The group's absent resources, handed to the pipeline as deletions to confirm."""
        kind = resources.REGISTRY[part.resource_name]
        days = [
            tuple(p["window"])
            for p in self.cursor["parts"]
            if p.get("window") and plan.Part.of_state(p).group == part.group
        ]
        found = (
            await session.execute(
                _ABSENT,
                {
                    "c": self.company_id,
                    "rn": part.resource_name,
                    "p": part.project_id,
                    "started": datetime.fromisoformat(state["started"]),
                    "day_field": None if kind.window is None else kind.window.day_field,
                    "first_day": min((d[0] for d in days), default=None),
                    "last_day": max((d[1] for d in days), default=None),
                    "run": self.run_id,
                    "part": part.group,
                },
            )
        ).all()
        await intake.store(
            session,
            [
                intake.absent(
                    run_id=self.run_id,
                    company_id=self.company_id,
                    resource_name=part.resource_name,
                    resource_id=int(row.resource_id),
                    project_id=row.project_id,
                )
                for row in found
            ],
        )
        return len(found)

    async def signal(self, failure: Failed, project_id: int | None) -> None:
        """A refusal is evidence for the gates, like any other call's."""
        if not failure.outcome.is_gate_signal:
            return
        async with self.deps.sessions() as session, session.begin():
            await gates.record_outcome(
                session,
                Work(self.company_id, project_id, credential_id=self.credential.id),
                failure.outcome,
                settings=self.deps.settings,
            )

    async def stop(self, failure: Failed) -> runs.RunView | None:
        """Not installed, no token, or failing: back to pending after a while (the gates decide
        when the company may be called again)."""
        await self.signal(failure, None)
        error = f"{failure.what}: {failure.outcome.status} {failure.outcome.message}"
        log.warning("resync.stopped", run_id=self.run_id, company_id=self.company_id, error=error)
        return await _end(self.deps, self.run_id, self.cursor, "pending", error, backoff=True)

    async def save(self, calls: Sequence[CallRecord] = ()) -> None:
        async with self.deps.sessions() as session, session.begin():
            await self._save_in(session, calls)

    async def _save_in(self, session: AsyncSession, calls: Sequence[CallRecord]) -> None:
        await session.execute(
            _SAVE,
            {
                "id": self.run_id,
                "cursor": orjson.dumps(self.cursor).decode(),
                "lease": self.deps.settings.resync_lease_seconds,
            },
        )
        await record_calls(session, calls)

    async def _record(self, calls: Sequence[CallRecord]) -> None:
        async with self.deps.sessions() as session, session.begin():
            await record_calls(session, calls)

    def _report(self) -> None:
        if self.progress is None:
            return
        now = datetime.now(UTC)
        self.progress(
            runs.RunView(
                self.run_id, self.company_id, None, None, "", "running", 0, now, now, None, None,
                self.cursor,
            )
        )  # fmt: skip


async def _end(
    deps: ResyncDeps,
    run_id: int,
    cursor: dict[str, Any],
    status: str,
    error: str | None,
    *,
    backoff: bool,
) -> runs.RunView | None:
    if status == "failed":
        metrics.resync_finished("failed")
    not_before = datetime.fromtimestamp(time.time() + _BACKOFF_SECONDS, UTC) if backoff else None
    async with deps.sessions() as session, session.begin():
        await session.execute(
            _END,
            {
                "id": run_id,
                "status": status,
                "not_before": not_before,
                "error": error,
                "cursor": orjson.dumps(cursor).decode(),
            },
        )
        view = await runs.get(session, run_id)
        if view is not None and status in ("done", "failed"):
            # Told downstream (`resync.finished`) with the run's own end.
            await outbox.append(
                session,
                messages.RESYNC_FINISHED,
                company_id=view.company_id,
                data={
                    "run_id": view.id,
                    "project_id": view.project_id,
                    "resource_name": view.resource_name,
                    "reason": view.reason,
                    "status": status,
                    "error": error,
                    **_summary(cursor),
                },
            )
        return view


def _summary(cursor: dict[str, Any]) -> dict[str, int]:
    parts: list[dict[str, Any]] = cursor.get("parts", [])
    return {
        "parts": len(parts),
        "listed": sum(int(p.get("listed", 0)) for p in parts),
        "written": sum(int(p.get("written", 0)) for p in parts),
        "absent": sum(int(p.get("absent", 0)) for p in parts),
        "calls": int(cursor.get("calls", 0)),
    }


# --- hand-off to the workers ------------------------------------------------------------------


# A run lists every resource type of its scope: the company's or the project's gate holds it
# (`app.gates.scopes`; a run that meets a held type learns it from its verdicts).
_DUE_RUNS = text(
    f"""
    SELECT r.id, r.attempts FROM resync_runs r
    WHERE r.status IN ('pending', 'running')
      AND (r.locked_until IS NULL OR r.locked_until < now())
      AND NOT EXISTS ({holding_gate_sql(company="r.company_id", project="r.project_id")})
    ORDER BY r.id LIMIT :limit
    """  # noqa: S608
)


async def enqueue_due(deps: ResyncDeps, *, limit: int = 50) -> int:
    """Hand runnable runs to the workers (job ids per claim, so a retry is never refused)."""
    async with deps.sessions() as session:
        due = (await session.execute(_DUE_RUNS, {"limit": limit})).all()
    for row in due:
        await enqueue_resync(deps.queue, int(row.id), int(row.attempts))
    return len(due)
