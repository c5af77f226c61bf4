"""What the operator surfaces (admin API, CLI) show of hooks and resyncs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fields import BodyId, ResourceName
from app.models import CompanyHook, HookTrigger, TriggerState
from app.schedule import runs
from app.subscriptions.service import SyncReport


class TriggerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resource_name: str
    event_type: str
    state: TriggerState = Field(
        description="active; refused (Procore's answer below, asked again at the next sync); "
        "not_subscribable (Procore lists it in `except` of /webhooks/resources)"
    )
    trigger_id: int | None
    status: int | None = Field(description="Procore's status code for a refused trigger")
    answer: str | None = Field(description="Procore's answer, or why it is not subscribed")
    updated_at: datetime


class HooksOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    company_id: int
    hook_id: int | None = Field(description="Procore's id of our hook in this company")
    hook_status: str | None = Field(
        description='"active", or "disabled" by Procore (after failed deliveries); null: '
        "not known (only Procore's v2.0 Webhooks API shows it)"
    )
    status_seen_at: datetime | None = Field(description="When Procore last showed the status")
    destination_url: str | None
    triggers: int = Field(description="Active triggers on the hook (resources x event types)")
    installed_at: datetime | None = Field(description="When the install was first confirmed")
    synced_at: datetime | None = Field(description="Last successful sync")
    sync_due_at: datetime | None = Field(description="A sync is requested for this time")
    last_changes: int = Field(description="Writes to Procore by the last successful sync")
    reenabled: int = Field(description="Times the hook was found disabled and re-enabled")
    reenabled_at: datetime | None = Field(description="When it was last re-enabled")
    missed_recovered: int = Field(
        description="Events of deliveries Procore discarded, found and taken in"
    )
    remediation: str | None = Field(description="What the installer must do for hooks to work")
    last_error: str | None
    project_ids: list[int] | None = Field(description="Permitted projects as last listed")
    trigger_states: list[TriggerOut] = Field(
        default_factory=list, description="Each wanted (resource, event type), as last synced"
    )


class SyncOut(BaseModel):
    company_id: int
    ok: bool
    hook_id: int | None
    hook_status: str | None
    changes: list[str] = Field(description="What was written to Procore (empty: all in step)")
    refused: list[str] = Field(description="Writes Procore refused, with its answers")
    reenabled: int
    recovered: int = Field(description="Events of discarded deliveries taken in")
    new_projects: list[int] = Field(description="Projects seen for the first time (backfilled)")
    remediation: str | None
    skipped: str | None
    error: str | None

    @classmethod
    def of(cls, report: SyncReport) -> SyncOut:
        return cls(
            company_id=report.company_id,
            ok=report.ok,
            hook_id=report.hook_id,
            hook_status=report.hook_status,
            changes=report.changes,
            refused=report.refusals,
            reenabled=report.reenabled,
            recovered=report.recovered,
            new_projects=report.new_projects,
            remediation=report.remediation,
            skipped=report.skipped,
            error=report.error,
        )


class ResyncIn(BaseModel):
    project_id: BodyId | None = Field(default=None, description="Only this project")
    resource_name: ResourceName = Field(default=None, description="Only this resource, e.g. RFIs")


class ResyncRunOut(BaseModel):
    id: int
    company_id: int
    project_id: int | None
    resource_name: str | None
    reason: str
    status: str = Field(description="pending | running | done | failed")
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    progress: dict[str, Any] = Field(
        description="parts, parts_done, pages, listed, written, absent (handed to the pipeline "
        "to confirm a deletion), total, calls"
    )

    @classmethod
    def of(cls, view: runs.RunView) -> ResyncRunOut:
        return cls(
            id=view.id,
            company_id=view.company_id,
            project_id=view.project_id,
            resource_name=view.resource_name,
            reason=view.reason,
            status=view.status,
            attempts=view.attempts,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
            last_error=view.last_error,
            progress=view.progress,
        )


async def hooks_of(session: AsyncSession, company_id: int) -> HooksOut | None:
    row = await session.get(CompanyHook, company_id)
    if row is None:
        return None
    triggers = (
        await session.scalars(
            select(HookTrigger)
            .where(HookTrigger.company_id == company_id)
            .order_by(HookTrigger.state, HookTrigger.resource_name, HookTrigger.event_type)
        )
    ).all()
    out = HooksOut.model_validate(row)
    out.trigger_states = [TriggerOut.model_validate(t) for t in triggers]
    return out
