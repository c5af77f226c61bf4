"""Keep each company's hook in step: list what Procore has, plan, apply, record.

- `sync_company` syncs one company under a lease on its `company_hooks` row (so two workers
  never sync one company at once), never while its company gate is parked, and records the
  hook's state (id, status, destination, triggers, re-enables) on the row for the operator.
  Each sync also lists the permitted projects: a project seen for the first time is
  backfilled (a resync run), and a company's first successful sync asks for the install
  resync.
- `tend` (an arq cron) marks companies whose last sync is older than
  HOOKS_SYNC_INTERVAL_SECONDS, discovers installs (the service account's `/companies`) once
  per interval, and hands due syncs and resyncs to the workers, after their rows committed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import text

from app import metrics
from app.gates import service as gates
from app.logs import get_logger
from app.models import CredentialKind
from app.procore.calls import CallRecord, record_calls
from app.resync import runs
from app.resync import service as resync
from app.runtime import Runtime
from app.subscriptions import plan as planning
from app.subscriptions.hooks import Failed, HooksApi
from app.subscriptions.schedule import request_sync
from app.webhooks.tokens import hook_authorization

log = get_logger(__name__)

SYNC_HOOKS = "sync_hooks"
# A failed sync is asked again after this long (or the interval, if shorter).
RETRY_SECONDS = 300.0
_ENQUEUE_LIMIT = 100


@dataclass(slots=True)
class SyncReport:
    company_id: int
    hook_id: int | None = None
    hook_status: str | None = None
    changes: list[str] = field(default_factory=list)
    reenabled: int = 0
    new_projects: list[int] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None


_CLAIM = text(
    """
    UPDATE company_hooks SET locked_until = now() + make_interval(secs => :lease)
    WHERE company_id = :c AND (locked_until IS NULL OR locked_until < now())
      AND (CAST(:any AS boolean) OR sync_due_at <= now())
    RETURNING sync_due_at, auth_fingerprint, project_ids, installed_at
    """
)
_ENSURE = text("INSERT INTO company_hooks (company_id) VALUES (:c) ON CONFLICT DO NOTHING")
_RELEASE = text("UPDATE company_hooks SET locked_until = NULL WHERE company_id = :c")
_FINISH = text(
    """
    UPDATE company_hooks SET locked_until = NULL,
        sync_due_at = CASE
            WHEN CAST(:retry_seconds AS float8) IS NOT NULL
                THEN now() + make_interval(secs => CAST(:retry_seconds AS float8))
            WHEN sync_due_at IS NOT DISTINCT FROM CAST(:claimed_due AS timestamptz) THEN NULL
            ELSE sync_due_at END,
        hook_id = COALESCE(CAST(:hook_id AS bigint), hook_id),
        hook_status = COALESCE(CAST(:hook_status AS text), hook_status),
        destination_url = COALESCE(CAST(:destination_url AS text), destination_url),
        triggers = COALESCE(CAST(:triggers AS int), triggers),
        auth_fingerprint = COALESCE(CAST(:fingerprint AS text), auth_fingerprint),
        project_ids = COALESCE(CAST(:project_ids AS bigint[]), project_ids),
        installed_at = CASE WHEN CAST(:ok AS boolean) THEN COALESCE(installed_at, now())
            ELSE installed_at END,
        synced_at = CASE WHEN CAST(:ok AS boolean) THEN now() ELSE synced_at END,
        last_changes = CASE WHEN CAST(:ok AS boolean) THEN CAST(:changes AS int)
            ELSE last_changes END,
        reenabled = reenabled + CAST(:reenabled AS int),
        reenabled_at = CASE WHEN CAST(:reenabled AS int) > 0 THEN now() ELSE reenabled_at END,
        last_error = CAST(:error AS text)
    WHERE company_id = :c
    """
)


async def sync_company(runtime: Runtime, company_id: int, *, on_demand: bool = False) -> SyncReport:
    """Reconcile one company's hook. On demand (operator), the company need not be due."""
    report = SyncReport(company_id)
    settings = runtime.settings
    async with runtime.sessions() as session, session.begin():
        if on_demand:
            await session.execute(_ENSURE, {"c": company_id})
        row = (
            await session.execute(
                _CLAIM, {"c": company_id, "lease": settings.resync_lease_seconds, "any": on_demand}
            )
        ).first()
    if row is None:
        report.skipped = "not due, or another worker is syncing it"
        return report
    credential, _ = await runtime.procore.tokens.credential_for(company_id)
    async with runtime.sessions() as session:
        verdict = await gates.verdict(
            session,
            credential_id=None if credential is None else credential.id,
            company_id=company_id,
            project_id=None,
        )
    if not verdict.open or credential is None or not settings.webhook_auth_tokens:
        report.skipped = (
            f"gate parked ({verdict.reason})"
            if not verdict.open
            else "no credential serves this company"
            if credential is None
            else "WEBHOOK_AUTH_TOKENS is not set"
        )
        async with runtime.sessions() as session, session.begin():
            await session.execute(_RELEASE, {"c": company_id})
        metrics.hook_sync("skipped")
        return report

    calls: list[CallRecord] = []
    api = HooksApi(runtime.procore, credential, company_id, calls)
    desired = planning.desired_hook(
        namespace=settings.webhook_namespace,
        public_base_url=settings.public_base_url,
        authorization=hook_authorization(settings, company_id),
        resources=settings.sync_resources,
    )
    failure = await _reconcile(api, desired, row.auth_fingerprint, report)
    projects: list[int] | None = None
    if failure is None:
        listed = await resync.list_projects(runtime, credential, company_id, calls)
        if isinstance(listed, Failed):
            failure = listed
        else:
            projects = listed
            if row.project_ids is not None:
                report.new_projects = sorted(set(listed) - set(row.project_ids))
    await _finish(runtime, row, report, desired, failure, projects, calls, credential.id)
    return report


async def _reconcile(
    api: HooksApi, desired: planning.DesiredHook, applied: str | None, report: SyncReport
) -> Failed | None:
    current = await api.hooks(desired.namespace)
    if isinstance(current, Failed):
        return current
    plan = planning.plan(desired, current, applied)
    hook_id = plan.kept
    for change in plan.changes:
        result: Failed | int | None
        if isinstance(change, planning.CreateHook):
            result = await api.create_hook(desired.body())
            if isinstance(result, int):
                hook_id, result = result, None
                report.hook_id = hook_id
        elif isinstance(change, planning.UpdateHook):
            result = await api.update_hook(change.hook_id, change.fields)
        elif isinstance(change, planning.DeleteHook):
            result = await api.delete_hook(change.hook_id)
        elif isinstance(change, planning.AddTrigger):
            target = change.hook_id if change.hook_id is not None else hook_id
            assert target is not None, "a trigger for a hook that was not created"
            result = await api.add_trigger(target, change.resource_name, change.event_type)
        else:
            result = await api.remove_trigger(change.hook_id, change.trigger_id)
        if isinstance(result, Failed):
            return result
        report.changes.append(_describe(change))
    report.hook_id = hook_id
    report.hook_status = planning.ACTIVE
    report.reenabled = plan.reenables
    return None


def _describe(change: planning.Change) -> str:
    if isinstance(change, planning.CreateHook):
        return "create hook"
    if isinstance(change, planning.UpdateHook):
        verb = "re-enable" if change.reenable else "update"
        return f"{verb} hook {change.hook_id}: {', '.join(sorted(change.fields))}"
    if isinstance(change, planning.DeleteHook):
        return f"delete hook {change.hook_id}"
    if isinstance(change, planning.AddTrigger):
        return f"add trigger {change.resource_name}/{change.event_type}"
    return f"remove trigger {change.trigger_id}"


async def _finish(
    runtime: Runtime,
    row: Any,
    report: SyncReport,
    desired: planning.DesiredHook,
    failure: Failed | None,
    projects: list[int] | None,
    calls: Sequence[CallRecord],
    credential_id: int,
) -> None:
    settings = runtime.settings
    company_id = report.company_id
    if failure is not None:
        report.error = f"{failure.what}: {failure.outcome.status} {failure.outcome.message}"
    ok = failure is None
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            _FINISH,
            {
                "c": company_id,
                "claimed_due": row.sync_due_at,
                "retry_seconds": None
                if ok
                else min(RETRY_SECONDS, settings.hooks_sync_interval_seconds),
                "hook_id": report.hook_id,
                "hook_status": report.hook_status,
                "destination_url": desired.destination_url if ok else None,
                "triggers": len(desired.triggers) if ok else None,
                "fingerprint": planning.fingerprint(desired.authorization) if ok else None,
                "project_ids": projects,
                "ok": ok,
                "changes": len(report.changes),
                "reenabled": report.reenabled,
                "error": report.error,
            },
        )
        if ok and row.installed_at is None:
            await runs.request(session, company_id, reason="install")
        for project_id in report.new_projects:
            await runs.request(session, company_id, project_id=project_id, reason="project_new")
        if failure is not None and failure.outcome.is_gate_signal:
            await gates.record_outcome(
                session,
                credential_id=credential_id,
                company_id=company_id,
                project_id=None,
                outcome=failure.outcome,
                settings=settings,
            )
        await record_calls(session, calls)
    metrics.hooks_reenabled(report.reenabled)
    metrics.hook_sync("failed" if not ok else "changed" if report.changes else "unchanged")
    log_event = log.warning if not ok or report.reenabled else log.info
    log_event(
        "hooks.synced",
        company_id=company_id,
        hook_id=report.hook_id,
        changes=len(report.changes),
        reenabled=report.reenabled,
        new_projects=len(report.new_projects),
        error=report.error,
    )


# --- the periodic tick -----------------------------------------------------------------------


_MARK_STALE = text(
    """
    UPDATE company_hooks SET sync_due_at = now()
    WHERE sync_due_at IS NULL
      AND (synced_at IS NULL OR synced_at < now() - make_interval(secs => :interval))
    """
)
_DUE_SYNCS = text(
    """
    SELECT h.company_id, h.sync_due_at FROM company_hooks h
    WHERE h.sync_due_at <= now() AND (h.locked_until IS NULL OR h.locked_until < now())
      AND NOT EXISTS (
        SELECT 1 FROM gates g WHERE g.scope_key = 'company:' || h.company_id
          AND g.state = 'parked')
    ORDER BY h.sync_due_at LIMIT :limit
    """
)
_KNOWN_COMPANIES = text(
    """
    SELECT company_id FROM company_hooks
    UNION SELECT company_id FROM company_credentials
    UNION SELECT company_id FROM gates WHERE scope = 'company' AND company_id IS NOT NULL
    """
)


async def tend(runtime: Runtime) -> tuple[int, int]:
    """Mark stale companies, discover installs once per interval, and enqueue due syncs and
    resync runs. Returns (syncs, resyncs) enqueued."""
    interval = runtime.settings.hooks_sync_interval_seconds
    async with runtime.sessions() as session, session.begin():
        await session.execute(_MARK_STALE, {"interval": interval})
    if await _discovery_due(runtime, interval):
        await discover(runtime)
    async with runtime.sessions() as session:
        due = (await session.execute(_DUE_SYNCS, {"limit": _ENQUEUE_LIMIT})).all()
    queue = runtime.queue
    for row in due:
        stamp = int(row.sync_due_at.timestamp() * 1_000_000)
        await queue.enqueue_job(
            SYNC_HOOKS,
            int(row.company_id),
            _job_id=f"{queue.default_queue_name}:hooks:{row.company_id}:{stamp}",
        )
    resyncs = await resync.enqueue_due(runtime)
    return len(due), resyncs


async def _discovery_due(runtime: Runtime, interval: float) -> bool:
    """Once per interval across all workers (Redis holds the mark; if it is lost, discovery
    merely runs again early)."""
    key = f"{runtime.settings.queue_name}:subscriptions:discovered"
    try:
        return bool(await runtime.queue.set(key, str(time.time()), nx=True, ex=int(interval)))
    except (RedisError, OSError):
        return False


async def discover(runtime: Runtime) -> list[int]:
    """Ask for a sync of every company where the app is installed and that has no hook row
    yet: the service account's `/companies` lists exactly those (FACTS.md §7)."""
    async with runtime.sessions() as session:
        known = sorted(int(c) for c in (await session.execute(_KNOWN_COMPANIES)).scalars())
    found: set[int] = set(known)
    if known:
        credential, _ = await runtime.procore.tokens.credential_for(known[0])
        if credential is not None and credential.kind is CredentialKind.CLIENT_CREDENTIALS:
            calls: list[CallRecord] = []
            listed = await resync.list_all(
                runtime, credential, known[0], "/rest/v1.0/companies", calls
            )
            if not isinstance(listed, Failed):
                found.update(int(c["id"]) for c in listed if isinstance(c, dict) and "id" in c)
            async with runtime.sessions() as session, session.begin():
                await record_calls(session, calls)
    async with runtime.sessions() as session, session.begin():
        new = await request_sync(session, found)
    if new:
        log.info("subscriptions.discovered", companies=new)
    return new
