"""What the operator surfaces (admin API, CLI) accept and show of write jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.fields import BodyId, Flag
from app.models import JobStatus
from app.registry import resources
from app.registry.resources import WriteKind
from app.writes.policy import KEY_MAX_CHARS, KEY_PATTERN

# Jobs in one bulk submission: an ERP-sized push, a sync call's worth.
BULK_MAX_JOBS = resources.MAX_SYNC_ITEMS
# The resources a job may name, published as an enum (the registry's written types).
WRITABLE_ENUM: dict[str, Any] = {"enum": list(resources.WRITABLE)}


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_id: BodyId
    project_id: BodyId | None = Field(
        default=None, description="Required for project-level resources"
    )
    resource_name: str = Field(
        min_length=1,
        max_length=128,
        json_schema_extra=WRITABLE_ENUM,
        description="A registered resource written back",
    )
    operation: WriteKind = Field(
        description="create, update, delete, or sync (create-or-update by origin_id); creates "
        "and updates of a resource with a sync action go through it"
    )
    payload: dict[str, Any] | None = Field(
        default=None,
        description="The resource's fields as Procore's create/update call names them, not "
        "wrapped (the service adds the wrapper key and the scope)",
    )
    resource_id: BodyId | None = Field(
        default=None, description="Procore's id, for update and delete"
    )
    origin_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=KEY_MAX_CHARS,
        pattern=KEY_PATTERN,
        description="Your own key for the resource (sync actions; unique per company)",
    )
    idempotency_key: str = Field(
        min_length=1,
        max_length=KEY_MAX_CHARS,
        pattern=KEY_PATTERN,
        description="Unique per company: submitting it again answers the same job",
    )


class JobAccepted(BaseModel):
    id: int
    status: JobStatus
    duplicate: bool = Field(description="The key was submitted before: this is that job")


class JobBulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobIn] = Field(min_length=1, max_length=BULK_MAX_JOBS)


class JobBulkAccepted(BaseModel):
    jobs: list[JobAccepted] = Field(description="One per submitted job, in the same order")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    company_id: int
    project_id: int | None
    resource_name: str
    operation: WriteKind
    resource_id: int | None = Field(description="The resource written (Procore's id)")
    origin_id: str | None
    idempotency_key: str
    status: JobStatus
    attempts: int
    last_status: int | None = Field(description="Procore's last HTTP status for this job")
    last_error: str | None = Field(description="Procore's reasons, or why the job waits")
    gate_id: int | None = Field(description="The gate holding a parked job")
    sent_at: datetime | None = Field(
        description="A plain call sent whose answer was not recorded (in doubt)"
    )
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobDetail(JobOut):
    payload: dict[str, Any] | None
    answer: dict[str, Any] | None = Field(
        description="Procore's answer for this job: the resource, or its per-item errors"
    )
    submitted_by: str


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")


class JobReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: Flag = Field(
        default=False,
        description="Also replay succeeded jobs, and in_doubt ones (sent again knowingly)",
    )


class JobResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_id: BodyId | None = Field(
        description="An in_doubt create: Procore's id of the resource it made (the job "
        "succeeds), or null: Procore has none (the job is sent again)",
    )


class JobEventOut(BaseModel):
    id: int
    at: datetime
    job_id: int
    company_id: int
    kind: str = Field(description="job.succeeded, job.failed, job.parked or job.cancelled")
    detail: dict[str, Any] | None


class JobEventPage(BaseModel):
    items: list[JobEventOut]
    next_cursor: str = Field(description="Pass as `after` next time (it never expires)")
    has_more: bool = Field(description="More outcomes are ready now: ask again at once")
