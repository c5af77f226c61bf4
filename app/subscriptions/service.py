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
from typing import Any, Protocol

import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.db import SessionFactory
from app.feed import messages, outbox
from app.gates import service as gates
from app.gates.scopes import Work, holding_gate_sql
from app.logs import get_logger
from app.models import TriggerState
from app.procore import paths
from app.procore.answers import OutcomeKind
from app.procore.calls import CallRecord, record_calls
from app.procore.client import ProcoreClient
from app.procore.patient import Failed
from app.procore.tokens import CredentialRef
from app.queue import enqueue_hooks_sync
from app.resync import service as resync
from app.schedule import runs
from app.schedule.hooks import request_sync
from app.settings import Settings
from app.subscriptions import plan as planning
from app.subscriptions.hooks import HooksApi
from app.webhooks import intake, payloads
from app.webhooks.payloads import NormalisedEvent
from app.webhooks.tokens import hook_authorization

log = get_logger(__name__)


class SubscriptionsDeps(Protocol):
    """What a hooks sync, discovery and the tend use (the listings of app.resync.service included).
    The edges pass the process's Runtime, which has all of these (mypy checks it)."""

    sessions: SessionFactory
    settings: Settings
    procore: ProcoreClient
    queue: ArqRedis


# A failed sync is asked again after this long (or the interval, if shorter).
RETRY_SECONDS = 300.0
_ENQUEUE_LIMIT = 100


WEBHOOKS_PERMISSION_REMEDIATION = (
    "grant the app's Webhooks API permission: Standard (Company Admin > App Management > "
    "the app's permissions; by default it is None, and Procore refuses hooks without it)"
)


@dataclass(frozen=True, slots=True)
class TriggerResult:
    resource_name: str
    event_type: str
    state: TriggerState
    trigger_id: int | None = None
    status: int | None = None
    answer: str | None = None


@dataclass(slots=True)
class SyncReport:
    company_id: int
    hook_id: int | None = None
    hook_status: str | None = None
    changes: list[str] = field(default_factory=list)
    reenabled: int = 0
    triggers: list[TriggerResult] = field(default_factory=list)
    # Writes Procore refused (each applied on its own: the others went on).
    refusals: list[str] = field(default_factory=list)
    recovered: int = 0
    new_projects: list[int] = field(default_factory=list)
    # Procore showed the hook disabled (it disables hooks after repeated delivery failures).
    found_disabled: bool = False
    remediation: str | None = None
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    @property
    def refused(self) -> list[TriggerResult]:
        return [t for t in self.triggers if t.state is TriggerState.REFUSED]


_CLAIM = text(
    """
    UPDATE company_hooks SET locked_until = now() + make_interval(secs => :lease)
    WHERE company_id = :c AND (locked_until IS NULL OR locked_until < now())
      AND (CAST(:any AS boolean) OR sync_due_at <= now())
    RETURNING sync_due_at, auth_fingerprint, project_ids, installed_at, hook_status
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
        hook_status = CASE WHEN CAST(:status_seen AS boolean) THEN CAST(:hook_status AS text)
            ELSE hook_status END,
        status_seen_at = CASE WHEN CAST(:status_seen AS boolean) THEN now()
            ELSE status_seen_at END,
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
        missed_recovered = missed_recovered + CAST(:recovered AS int),
        remediation = CAST(:remediation AS text),
        last_error = CAST(:error AS text)
    WHERE company_id = :c
    """
)
_FORGET_TRIGGERS = text("DELETE FROM hook_triggers WHERE company_id = :c")
_RECORD_TRIGGERS = text(
    """
    INSERT INTO hook_triggers (company_id, resource_name, event_type, state, trigger_id, status,
                               answer)
    SELECT :c, * FROM unnest(
        CAST(:rn AS text[]), CAST(:et AS text[]), CAST(:st AS text[]), CAST(:tid AS bigint[]),
        CAST(:status AS int[]), CAST(:answer AS text[]))
    """
)


async def sync_company(
    deps: SubscriptionsDeps, company_id: int, *, on_demand: bool = False
) -> SyncReport:
    """Reconcile one company's hook. On demand (operator), the company need not be due."""
    report = SyncReport(company_id)
    settings = deps.settings
    async with deps.sessions() as session, session.begin():
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
    credential, _ = await deps.procore.tokens.credential_for(company_id)
    async with deps.sessions() as session:
        verdict = await gates.verdict(
            session, Work(company_id, credential_id=None if credential is None else credential.id)
        )
    if not verdict.open or credential is None or not settings.webhook_auth_tokens:
        report.skipped = (
            f"gate parked ({verdict.reason})"
            if not verdict.open
            else "no credential serves this company"
            if credential is None
            else "WEBHOOK_AUTH_TOKENS is not set"
        )
        async with deps.sessions() as session, session.begin():
            await session.execute(_RELEASE, {"c": company_id})
        metrics.hook_sync("skipped")
        return report

    calls: list[CallRecord] = []
    api = HooksApi(deps.procore, credential, company_id, calls)
    authorization = hook_authorization(settings, company_id)
    failure = await _reconcile(api, settings, authorization, row.auth_fingerprint, report)
    if failure is None and report.hook_id is not None:
        failure = await _recover_missed(deps, api, report)
    projects: list[int] | None = None
    if failure is None:
        listed = await resync.list_projects(deps, credential, company_id, calls)
        if isinstance(listed, Failed):
            failure = listed
        else:
            projects = listed
            if row.project_ids is not None:
                report.new_projects = sorted(set(listed) - set(row.project_ids))
    await _finish(deps, row, report, authorization, failure, projects, calls, credential.id)
    return report


async def _reconcile(
    api: HooksApi,
    settings: Settings,
    authorization: str,
    applied: str | None,
    report: SyncReport,
) -> Failed | None:
    """List, plan and apply. Each write stands alone: one Procore refuses is recorded with
    its answer and the others still happen (only a hook that cannot be created stops it)."""
    allowed = await api.subscribable()
    if isinstance(allowed, Failed):
        return allowed
    desired = planning.desired_hook(
        namespace=settings.webhook_namespace,
        public_base_url=settings.public_base_url,
        authorization=authorization,
        resources_wanted=settings.sync_resources,
        allowed=allowed,
    )
    current = await api.hooks(desired.namespace)
    if isinstance(current, Failed):
        return current
    plan = planning.plan(desired, current, applied)
    hook_id = plan.kept
    kept = next((h for h in current if h.id == hook_id), None)
    report.hook_status = None if kept is None else kept.status
    report.found_disabled = report.hook_status == planning.DISABLED
    active: dict[tuple[str, str], int | None] = dict(plan.kept_triggers)
    refused: dict[tuple[str, str], Failed] = {}
    added: list[planning.AddTrigger] = []
    for change in plan.changes:
        result: Failed | int | None
        if isinstance(change, planning.CreateHook):
            result = await api.create_hook(desired.body())
            if isinstance(result, Failed):
                return result
            hook_id, result = result, None
            report.hook_status = planning.ACTIVE
        elif isinstance(change, planning.UpdateHook):
            result = await api.update_hook(change.hook_id, change.fields)
        elif isinstance(change, planning.Reenable):
            result = await api.reenable(change.hook_id)
            if result is None:
                report.reenabled += 1
                report.hook_status = planning.ACTIVE
        elif isinstance(change, planning.DeleteHook):
            result = await api.delete_hook(change.hook_id)
        elif isinstance(change, planning.AddTrigger):
            added.append(change)
            continue
        else:
            result = await api.remove_trigger(change.hook_id, change.trigger_id)
        if isinstance(result, Failed):
            report.refusals.append(f"{_describe(change)}: {result.text}")
            if _permission_missing(result):
                report.remediation = WEBHOOKS_PERMISSION_REMEDIATION
        else:
            report.changes.append(_describe(change))
    if added:
        assert hook_id is not None, "triggers for a hook that was not created"
        wanted = [(c.resource_name, c.event_type) for c in added]
        for key, result in (await api.add_triggers(hook_id, wanted, desired.api_version)).items():
            if isinstance(result, Failed):
                refused[key] = result
                report.refusals.append(f"add trigger {key[0]}/{key[1]}: {result.text}")
            else:
                active[key] = result or None
                report.changes.append(f"add trigger {key[0]}/{key[1]}")
    report.hook_id = hook_id
    report.triggers = _trigger_results(desired, active, refused)
    return None


def _trigger_results(
    desired: planning.DesiredHook,
    active: dict[tuple[str, str], int | None],
    refused: dict[tuple[str, str], Failed],
) -> list[TriggerResult]:
    found = [
        TriggerResult(r, e, TriggerState.ACTIVE, trigger_id=active[(r, e)])
        for r, e in sorted(desired.triggers)
        if (r, e) in active
    ]
    found += [
        TriggerResult(r, e, TriggerState.REFUSED, status=f.outcome.status, answer=f.text)
        for (r, e), f in sorted(refused.items())
    ]
    found += [
        TriggerResult(x.resource_name, x.event_type, TriggerState.NOT_SUBSCRIBABLE, answer=x.why)
        for x in desired.excluded
    ]
    return found


async def _recover_missed(
    deps: SubscriptionsDeps, api: HooksApi, report: SyncReport
) -> Failed | None:
    """Deliveries Procore discarded after 12 h of failure are changes the receiver never
    saw: their events are taken in (deduplicated on their ULID, like any delivery), so the
    pipeline fetches exactly those resources."""
    assert report.hook_id is not None
    found = await api.discarded(report.hook_id)
    if isinstance(found, Failed):
        # Not fatal to the sync: the next one asks again.
        report.refusals.append(f"discarded deliveries: {found.text}")
        return None
    events: list[NormalisedEvent] = []
    for item in found:
        try:
            event = payloads.read_event(
                orjson.dumps(item), own_client_id=deps.settings.procore_client_id
            )
        except payloads.PayloadRejected:
            continue
        if event.company_id == report.company_id:
            events.append(event)
    async with deps.sessions() as session, session.begin():
        report.recovered = await intake.store(session, events)
    if report.recovered:
        log.warning("hooks.missed_recovered", company_id=report.company_id, events=report.recovered)
    return None


def _permission_missing(failure: Failed) -> bool:
    """A 403 from the Webhooks API in a company where the app is installed: the app lacks
    the Webhooks API tool permission (FACTS.md §9)."""
    return failure.outcome.kind is OutcomeKind.FORBIDDEN


def _describe(change: planning.Change) -> str:
    if isinstance(change, planning.CreateHook):
        return "create hook"
    if isinstance(change, planning.UpdateHook):
        return f"update hook {change.hook_id}: {', '.join(sorted(change.fields))}"
    if isinstance(change, planning.Reenable):
        return f"re-enable hook {change.hook_id}"
    if isinstance(change, planning.DeleteHook):
        return f"delete hook {change.hook_id}"
    if isinstance(change, planning.AddTrigger):
        return f"add trigger {change.resource_name}/{change.event_type}"
    return f"remove trigger {change.trigger_id}"


async def _finish(
    deps: SubscriptionsDeps,
    row: Any,
    report: SyncReport,
    authorization: str,
    failure: Failed | None,
    projects: list[int] | None,
    calls: Sequence[CallRecord],
    credential_id: int,
) -> None:
    settings = deps.settings
    company_id = report.company_id
    if failure is not None:
        report.error = failure.text
        if _permission_missing(failure):
            report.remediation = WEBHOOKS_PERMISSION_REMEDIATION
    elif report.refusals:
        report.error = None
    ok = failure is None
    reconciled = ok or bool(report.triggers)
    async with deps.sessions() as session, session.begin():
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
                "status_seen": reconciled and report.hook_status is not None,
                "destination_url": settings.public_base_url.rstrip("/") + "/webhooks/procore"
                if ok
                else None,
                "triggers": sum(t.state is TriggerState.ACTIVE for t in report.triggers)
                if reconciled
                else None,
                "fingerprint": planning.fingerprint(authorization) if ok else None,
                "project_ids": projects,
                "ok": ok,
                "changes": len(report.changes),
                "reenabled": report.reenabled,
                "recovered": report.recovered,
                "remediation": report.remediation,
                "error": report.error or ("; ".join(report.refusals) or None),
            },
        )
        if reconciled:
            await _record_triggers(session, company_id, report.triggers)
        await _tell_downstream(session, row, report)
        if ok and row.installed_at is None:
            await runs.request(session, company_id, reason="install")
        for project_id in report.new_projects:
            await runs.request(session, company_id, project_id=project_id, reason="project_new")
        if (
            failure is not None
            and failure.outcome.is_gate_signal
            and not _permission_missing(failure)
        ):
            await gates.record_outcome(
                session,
                Work(company_id, credential_id=credential_id),
                failure.outcome,
                settings=settings,
            )
        await record_calls(session, calls)
    metrics.hooks_reenabled(report.reenabled)
    metrics.hook_sync("failed" if not ok else "changed" if report.changes else "unchanged")
    log_event = log.warning if not ok or report.reenabled or report.refusals else log.info
    log_event(
        "hooks.synced",
        company_id=company_id,
        hook_id=report.hook_id,
        changes=len(report.changes),
        reenabled=report.reenabled,
        refused=len(report.refusals),
        recovered=report.recovered,
        new_projects=len(report.new_projects),
        error=report.error,
    )


async def _tell_downstream(session: AsyncSession, row: Any, report: SyncReport) -> None:
    """A hook newly found disabled, and a re-enable, are facts for the outbox (delivered to
    destinations that want `hook.*`), written with the sync's own record."""
    base = {"hook_id": report.hook_id}
    if report.found_disabled and row.hook_status != planning.DISABLED:
        await outbox.append(
            session, messages.HOOK_DISABLED, company_id=report.company_id, data=base
        )
    if report.reenabled:
        await outbox.append(
            session,
            messages.HOOK_REENABLED,
            company_id=report.company_id,
            data={**base, "reenabled": report.reenabled},
        )


async def _record_triggers(
    session: AsyncSession, company_id: int, triggers: Sequence[TriggerResult]
) -> None:
    await session.execute(_FORGET_TRIGGERS, {"c": company_id})
    if not triggers:
        return
    await session.execute(
        _RECORD_TRIGGERS,
        {
            "c": company_id,
            "rn": [t.resource_name for t in triggers],
            "et": [t.event_type for t in triggers],
            "st": [t.state.value for t in triggers],
            "tid": [t.trigger_id for t in triggers],
            "status": [t.status for t in triggers],
            "answer": [None if t.answer is None else t.answer[:2000] for t in triggers],
        },
    )


# --- the periodic tick -----------------------------------------------------------------------


_MARK_STALE = text(
    """
    UPDATE company_hooks SET sync_due_at = now()
    WHERE sync_due_at IS NULL
      AND (synced_at IS NULL OR synced_at < now() - make_interval(secs => :interval))
    """
)
# A hooks sync is company-level work (`app.gates.scopes`).
_DUE_SYNCS = text(
    f"""
    SELECT h.company_id, h.sync_due_at FROM company_hooks h
    WHERE h.sync_due_at <= now() AND (h.locked_until IS NULL OR h.locked_until < now())
      AND NOT EXISTS ({holding_gate_sql(company="h.company_id")})
    ORDER BY h.sync_due_at LIMIT :limit
    """  # noqa: S608
)
_KNOWN_COMPANIES = text(
    """
    SELECT company_id FROM company_hooks
    UNION SELECT company_id FROM company_credentials
    UNION SELECT company_id FROM gates WHERE scope = 'company' AND company_id IS NOT NULL
    """
)


async def tend(deps: SubscriptionsDeps) -> tuple[int, int]:
    """Mark stale companies, discover installs once per interval, and enqueue due syncs and
    resync runs. Returns (syncs, resyncs) enqueued."""
    interval = deps.settings.hooks_sync_interval_seconds
    async with deps.sessions() as session, session.begin():
        await session.execute(_MARK_STALE, {"interval": interval})
    if await _discovery_due(deps, interval):
        await discover(deps)
    async with deps.sessions() as session:
        due = (await session.execute(_DUE_SYNCS, {"limit": _ENQUEUE_LIMIT})).all()
    for row in due:
        await enqueue_hooks_sync(deps.queue, int(row.company_id), row.sync_due_at)
    resyncs = await resync.enqueue_due(deps)
    return len(due), resyncs


async def _discovery_due(deps: SubscriptionsDeps, interval: float) -> bool:
    """Once per interval across all workers (Redis holds the mark; if it is lost, discovery
    merely runs again early)."""
    key = f"{deps.settings.queue_name}:subscriptions:discovered"
    try:
        return bool(await deps.queue.set(key, str(time.time()), nx=True, ex=int(interval)))
    except (RedisError, OSError):
        return False


async def discover(deps: SubscriptionsDeps) -> list[int]:
    """Ask for a sync of every company where the app is installed: the service account's
    `GET /rest/v1.0/companies` lists exactly those (FACTS.md §7). Procore sends no event
    for an install, so this is how a fresh deployment finds its first companies, and a
    later install is found within HOOKS_SYNC_INTERVAL_SECONDS.

    The call is made without `Procore-Company-Id` (none is known on a fresh deployment).
    A service account in a multi-region setup must send the header even there (FACTS.md
    §4): when Procore asks for it, the call is made once per company of
    PROCORE_DISCOVERY_COMPANY_IDS (one per region) and per known company (a few)."""
    async with deps.sessions() as session:
        known = sorted(int(c) for c in (await session.execute(_KNOWN_COMPANIES)).scalars())
    found: set[int] = set(known)
    credential = await deps.procore.tokens.app_credential()
    if credential is not None:
        calls: list[CallRecord] = []
        installed = await _installed_companies(deps, credential, known, calls)
        found |= installed
        async with deps.sessions() as session, session.begin():
            await record_calls(session, calls)
            # One call covers every company: dormant gates of listed companies probe now.
            await gates.companies_installed(session, deps.settings, installed)
    async with deps.sessions() as session, session.begin():
        new = await request_sync(session, found)
    if new:
        log.info("subscriptions.discovered", companies=new)
    return new


# Known companies asked on behalf of their region when Procore wants a company header.
_DISCOVERY_KNOWN = 5


async def _installed_companies(
    deps: SubscriptionsDeps,
    credential: CredentialRef,
    known: Sequence[int],
    calls: list[CallRecord],
) -> set[int]:
    listed = await resync.list_all(deps, credential, None, paths.COMPANIES, calls)
    if not isinstance(listed, Failed):
        return _company_ids(listed)
    if listed.outcome.kind is not OutcomeKind.REJECTED:
        log.warning("subscriptions.discovery_failed", error=listed.text)
        return set()
    # "Missing Procore-Company-Id header": one call per region's company instead.
    found: set[int] = set()
    asked = list(dict.fromkeys([*deps.settings.procore_discovery_company_ids, *known]))
    for company_id in asked[: len(deps.settings.procore_discovery_company_ids) + _DISCOVERY_KNOWN]:
        listed = await resync.list_all(deps, credential, company_id, paths.COMPANIES, calls)
        if not isinstance(listed, Failed):
            found |= _company_ids(listed)
    return found


def _company_ids(listed: Sequence[Any]) -> set[int]:
    return {
        int(c["id"])
        for c in listed
        if isinstance(c, dict) and isinstance(c.get("id"), int) and not isinstance(c["id"], bool)
    }
