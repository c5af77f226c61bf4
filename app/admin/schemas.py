"""What the admin API answers and accepts (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.fields import NO_NUL, BodyId, Flag, Moment, ResourceName
from app.models import FINAL_STATUSES, EventStatus, GateScope, GateState


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class GateOut(_Out):
    id: int
    scope: GateScope
    scope_key: str = Field(description='"credential:7", "company:31", "project:31:900"')
    state: GateState
    company_id: int | None
    project_id: int | None
    credential_id: int | None
    diagnosis: str | None = Field(description="Why the gate is closed (not_installed, ...)")
    remediation: str | None = Field(description="What someone must do to reopen it")
    last_status: int | None = Field(description="HTTP status of the answer that was diagnosed")
    body_excerpt: str | None
    signals: int
    parked_at: datetime | None
    parked_by: str | None = Field(description='"policy" or "operator"')
    probe_attempt: int
    next_probe_at: datetime | None = Field(description="When the next probe runs")
    last_probe_at: datetime | None
    opened_at: datetime | None
    updated_at: datetime
    parked_events: int = Field(description="Events this gate holds")
    oldest_parked_age_s: float | None = Field(description="Age of the oldest event it holds")


class GatePage(BaseModel):
    items: list[GateOut]
    next_cursor: str | None


class CallOut(_Out):
    id: int
    at: datetime
    purpose: str
    method: str
    path: str
    status: int | None
    latency_ms: int
    error: str | None
    credential_id: int | None
    company_id: int | None
    project_id: int | None
    event_id: int | None


class GateDetail(GateOut):
    recent_calls: list[CallOut] = Field(description="Procore's latest answers for this scope")


class ProbeOut(BaseModel):
    company_id: int
    gate_id: int | None
    opened: bool = Field(description="The install is confirmed and the company's gates opened")
    status: int | None = Field(description="HTTP status of the probe call")
    diagnosis: str | None
    remediation: str | None
    message: str


class ReasonIn(BaseModel):
    reason: str = Field(
        min_length=1, max_length=500, pattern=NO_NUL, description="Why (kept in the audit)"
    )


class EventOut(_Out):
    id: int
    dedupe_key: str
    payload_version: str
    company_id: int
    project_id: int | None
    resource_name: str | None
    resource_id: int | None
    event_type: str | None
    reason: str | None
    status: EventStatus
    attempts: int
    received_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    last_status: int | None
    last_error: str | None
    gate_id: int | None
    credential_id: int | None


class EventDetail(EventOut):
    raw: dict[str, Any] = Field(description="The payload as Procore sent it")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")


class ReplayIn(BaseModel):
    force: Flag = Field(
        default=False, description="Also replay `done`, `ignored` and `unsupported` events"
    )


class ReplayFilterIn(BaseModel):
    status: list[EventStatus] = Field(
        default_factory=lambda: [EventStatus.DEAD],
        description="Final statuses to replay (done, ignored, unsupported need force)",
        max_length=len(EventStatus),
        # Only final statuses can be replayed: the schema says so, as the service does.
        json_schema_extra={"items": {"enum": [s.value for s in FINAL_STATUSES]}},
    )
    company_id: BodyId | None = None
    project_id: BodyId | None = None
    resource_name: ResourceName = None
    gate_id: BodyId | None = None
    received_since: Moment | None = None
    received_until: Moment | None = None
    force: Flag = False
    max_events: BodyId | None = Field(default=None, description="Stop after this many")


class ReplayOut(BaseModel):
    replayed: int


class ReplayOneOut(BaseModel):
    replayed: bool
    event: EventOut


class WorkersOut(BaseModel):
    alive: int = Field(description="Workers whose heartbeat is fresh")
    newest_heartbeat_age_s: float | None


class SummaryOut(BaseModel):
    events_by_status: dict[str, int]
    gates_by_state: dict[str, int]
    gates_by_scope_and_state: dict[str, dict[str, int]]
    parked_events: int
    queue_depth: int = Field(description="Events due now")
    oldest_due_age_s: float = Field(description="How long the oldest due event has waited")
    workers: WorkersOut
    forbidden_24h_by_company: dict[str, int] = Field(
        default_factory=dict,
        description="403s Procore answered in the last 24 hours, per company (probes included; "
        "Procore's Integration Health counts them)",
    )


class ResourceOut(_Out):
    change_seq: int
    company_id: int
    resource_name: str
    resource_id: int
    project_id: int | None
    data: dict[str, Any] | None = Field(description="Procore's object; null for a tombstone")
    procore_updated_at: datetime | None
    fetched_at: datetime
    deleted_at: datetime | None = Field(description="Set when the resource was deleted")


class ResourcePage(BaseModel):
    items: list[ResourceOut]
    next_cursor: str = Field(description="Pass as `since` next time (keep it: it never expires)")
    has_more: bool = Field(description="More changes are ready now: ask again at once")


class GateTransitionOut(BaseModel):
    id: int = Field(description="The transition's position in the gates' feed")
    gate_id: int
    kind: str = Field(description="parked, needs_admin, released, moved, dormant or woken")
    scope: str
    scope_key: str
    company_id: int | None
    project_id: int | None
    resource_name: str | None
    diagnosis: str | None
    remediation: str | None = Field(description="What an administrator must do, if anything")
    detail: dict[str, Any] = Field(
        description="Who acted (`by`), the status seen, the projects of an incident"
    )
    at: datetime


class GateTransitionPage(BaseModel):
    items: list[GateTransitionOut]
    next_cursor: str = Field(description="Pass as `since` next time (keep it: it never expires)")
    has_more: bool = Field(description="More transitions are ready now: ask again at once")


class ConnectLinkIn(BaseModel):
    company_id: BodyId | None = None


class ConnectLinkOut(BaseModel):
    url: str
    company_id: int | None
    expires_at: datetime


class SetupLinkIn(BaseModel):
    company_id: BodyId


class SetupLinkOut(BaseModel):
    url: str = Field(description="The company's setup page: its live state and next steps")
    company_id: int
    expires_at: datetime
    embed_key: str = Field(
        description="Value of the embedded app's configurable field for this company"
    )


class ActionOut(_Out):
    id: int
    at: datetime
    actor: str = Field(description="admin:<token fingerprint> or cli:<user>@<host>")
    action: str
    target: str | None
    detail: dict[str, Any] | None


class ActionPage(BaseModel):
    items: list[ActionOut]
    next_cursor: str | None


class CredentialOut(BaseModel):
    id: int
    kind: str = Field(
        description='"client_credentials" (the app\'s service account) or '
        '"authorization_code" (a connected user)'
    )
    label: str
    procore_user_id: int | None
    procore_login: str | None
    holds_tokens: bool = Field(description="Tokens are stored for it (never shown)")
    needs_reauth: bool
    companies: list[int] = Field(description="Companies it serves")
    created_at: datetime
    updated_at: datetime


class CredentialRemovedOut(BaseModel):
    id: int
    companies: list[int] = Field(
        description="Companies it served: they fall back to the app's service account"
    )
    revoke: str = Field(
        description='What Procore answered to `POST /oauth/revoke`: "revoked", "failed" (not '
        'confirmed: see the call audit) or "nothing" (no token was stored)'
    )
    statuses: list[int | None] = Field(description="HTTP status per token sent (null: no answer)")


class Problem(BaseModel):
    """An error: `detail` says why (for invalid input, the list of what is wrong)."""

    detail: str | list[dict[str, Any]]
