"""What the operator surfaces (admin API, CLI) show of hooks and resyncs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.fields import BodyId, ResourceName
from app.models import CompanyHook
from app.resync import runs
from app.subscriptions.service import SyncReport


class HooksOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    company_id: int
    hook_id: int | None = Field(description="Procore's id of our hook in this company")
    hook_status: str | None = Field(description='"active", or "disabled" by Procore')
    destination_url: str | None
    triggers: int = Field(description="Triggers on the hook (resources x event types)")
    installed_at: datetime | None = Field(description="When the install was first confirmed")
    synced_at: datetime | None = Field(description="Last successful sync")
    sync_due_at: datetime | None = Field(description="A sync is requested for this time")
    last_changes: int = Field(description="Writes to Procore by the last successful sync")
    reenabled: int = Field(description="Times the hook was found disabled and re-enabled")
    reenabled_at: datetime | None
    last_error: str | None
    project_ids: list[int] | None = Field(description="Permitted projects as last listed")


class SyncOut(BaseModel):
    company_id: int
    ok: bool
    hook_id: int | None
    changes: list[str] = Field(description="What was written to Procore (empty: all in step)")
    reenabled: int
    new_projects: list[int] = Field(description="Projects seen for the first time (backfilled)")
    skipped: str | None
    error: str | None

    @classmethod
    def of(cls, report: SyncReport) -> SyncOut:
        return cls(
            company_id=report.company_id,
            ok=report.ok,
            hook_id=report.hook_id,
            changes=report.changes,
            reenabled=report.reenabled,
            new_projects=report.new_projects,
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
        description="parts, parts_done, pages, listed, written, deleted, total, calls"
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
    return None if row is None else HooksOut.model_validate(row)
