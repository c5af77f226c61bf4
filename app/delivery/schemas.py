"""What the destinations' admin API answers and accepts (the OpenAPI schema is generated from
these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import DestinationState
from app.webhooks.payloads import INT64_MAX

CompanyId = Field(ge=1, le=INT64_MAX)


class DestinationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2048,
        description="Where deliveries are POSTed: https, a public address (production)",
    )
    description: str | None = Field(default=None, max_length=200)
    event_types: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Types (resource.updated, gate.parked, ...) or families (gate.*); "
        "omit for every type",
    )
    company_ids: list[int] | None = Field(
        default=None, max_length=1000, description="Only these companies; omit for all"
    )
    resource_names: list[str] | None = Field(
        default=None, max_length=100, description="Only these resource types (RFIs, ...)"
    )
    include_object: bool = Field(
        default=False, description="Resource changes carry the object itself in data.object"
    )
    enabled: bool = True


class DestinationPatch(BaseModel):
    """Only the fields given change; `null` clears a filter (every type, company, resource)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=200)
    event_types: list[str] | None = Field(default=None, max_length=50)
    company_ids: list[int] | None = Field(default=None, max_length=1000)
    resource_names: list[str] | None = Field(default=None, max_length=100)
    include_object: bool | None = None
    enabled: bool | None = None


class DestinationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str | None
    event_types: list[str] | None
    company_ids: list[int] | None
    resource_names: list[str] | None
    include_object: bool
    enabled: bool
    state: DestinationState = Field(
        description="open; suspect (failing: one message at a time, retried with backoff); "
        "parked (probes only, until one is delivered)"
    )
    failures: int = Field(description="Failed attempts in a row")
    probe_attempt: int
    next_attempt_at: datetime | None = Field(description="When a retry or probe is next due")
    parked_at: datetime | None
    delivered: int
    failed: int
    dead: int = Field(description="Messages the destination refused (dead letters)")
    dead_letters_pending: int = Field(description="Dead letters not yet replayed successfully")
    behind: dict[str, int] = Field(
        description="Per feed, positions not yet passed (an upper bound on what is held)"
    )
    last_status: int | None = Field(description="HTTP status of the last answer")
    last_error: str | None = Field(description="The last failure or refusal, as answered")
    last_attempt_at: datetime | None
    last_delivered_at: datetime | None
    secret_rotated_until: datetime | None = Field(
        description="While set, the previous secret signs too (a rotation's overlap)"
    )
    created_at: datetime
    updated_at: datetime


class DestinationCreated(DestinationOut):
    secret: str = Field(description="The signing secret (whsec_...): shown this once")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float | None = Field(
        default=None,
        ge=0,
        le=30 * 86400,
        description="How long the previous secret still signs (default: "
        "DESTINATION_SECRET_OVERLAP_SECONDS)",
    )


class RotateOut(BaseModel):
    id: int
    secret: str = Field(description="The new signing secret: shown this once")
    previous_valid_until: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    message_id: str
    type: str
    outcome: str = Field(description="delivered | failed | dead | refused")
    status: int | None
    error: str | None
    latency_ms: int
    replay: bool


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    next_cursor: str | None


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    destination_id: int
    message_id: str
    type: str
    source: str
    position: int
    body: dict[str, Any]
    status: int | None
    answer: str | None
    created_at: datetime
    replay_requested_at: datetime | None
    replays: int
    replayed_at: datetime | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class ReplayLettersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, max_length=64, description="Only this event type")
    max_letters: int | None = Field(default=None, ge=1, le=1_000_000)


class ReplayLettersOut(BaseModel):
    replayed: int = Field(description="Dead letters queued for delivery, oldest first")
