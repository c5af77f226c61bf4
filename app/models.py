"""Tables. PostgreSQL is the source of truth: every unfinished piece of work is a row here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.registry.resources import WriteKind

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class EventStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    PARKED = "parked"
    DONE = "done"
    SKIPPED = "skipped"
    DEAD = "dead"
    IGNORED = "ignored"
    UNSUPPORTED = "unsupported"


# Statuses a worker still has to act on; everything else is final (or waits on a gate).
DUE_STATUSES = (EventStatus.QUEUED, EventStatus.RETRYING, EventStatus.PROCESSING)
FINAL_STATUSES = (
    EventStatus.DONE,
    EventStatus.SKIPPED,
    EventStatus.DEAD,
    EventStatus.IGNORED,
    EventStatus.UNSUPPORTED,
)


class Event(Base):
    """One webhook delivery from Procore, normalised across payload versions."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The ULID (v2/v3 `ulid`, v4 `id`): Procore's identity of the event, so the dedupe key.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload_version: Mapped[str] = mapped_column(String(8))
    procore_event_id: Mapped[int | None] = mapped_column(BigInteger)
    company_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str | None] = mapped_column(String(128))
    resource_id: Mapped[int | None] = mapped_column(BigInteger)
    # Normalised to create/update/delete where recognised; `reason` keeps Procore's word.
    event_type: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    source_application_id: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)

    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus, "event_status"))
    # Transient failures spent against RETRY_MAX_ATTEMPTS (429s do not count).
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Incremented on every claim; a fencing token so a late worker cannot overwrite.
    claims: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Lease: while in the future, nobody else hands this row to a worker.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gate_id: Mapped[int | None] = mapped_column(ForeignKey("gates.id", ondelete="SET NULL"))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL")
    )
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The dispatcher's scan: due rows only, so the index stays small however large the
        # table grows.
        Index(
            "ix_events_due",
            "company_id",
            "next_attempt_at",
            postgresql_where=text("status IN ('queued', 'retrying', 'processing')"),
        ),
        Index("ix_events_company_status_key", "company_id", "status", "dedupe_key"),
        Index(
            "ix_events_resource_pending",
            "company_id",
            "resource_name",
            "resource_id",
            postgresql_where=text("status IN ('queued', 'retrying', 'processing', 'parked')"),
        ),
        # Finished rows only: a queued row costs no entry here when it is stored.
        Index(
            "ix_events_finished_at",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL"),
        ),
        Index(
            "ix_events_gate_parked",
            "gate_id",
            "dedupe_key",
            postgresql_where=text("status = 'parked'"),
        ),
        # The expiry scan (parked longer than the retention) on every gate upkeep tick.
        Index(
            "ix_events_parked_received",
            "received_at",
            postgresql_where=text("status = 'parked'"),
        ),
    )


class GateScope(StrEnum):
    CREDENTIAL = "credential"
    COMPANY = "company"
    PROJECT = "project"
    # One resource type (Procore "tool") in the company, every project alike.
    TOOL = "tool"
    # One resource type in one project.
    PROJECT_TOOL = "project_tool"


class GateState(StrEnum):
    OPEN = "open"
    SUSPECT = "suspect"
    PARKED = "parked"


class Gate(Base):
    """Guards one scope (a credential, a company, a company's project, a resource type in the
    company or in one project; `app.gates.scopes`) against calls."""

    __tablename__ = "gates"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # "credential:7", "company:31", "project:31:900": one row per scope.
    scope_key: Mapped[str] = mapped_column(String(255), unique=True)
    scope: Mapped[GateScope] = mapped_column(_enum(GateScope, "gate_scope"))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE")
    )
    company_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str | None] = mapped_column(String(128))

    state: Mapped[GateState] = mapped_column(_enum(GateState, "gate_state"))
    signals: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    window_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_signal_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_by: Mapped[str | None] = mapped_column(String(32))  # "policy" | "operator"
    probe_attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_probe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Single probe in flight across all workers: a probe holds this lease.
    probe_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_probe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Dormant: parked with no probes until an outside signal wakes it (app.gates.policy).
    dormant_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    woken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    body_excerpt: Mapped[str | None] = mapped_column(Text)
    diagnosis: Mapped[str | None] = mapped_column(String(64))
    remediation: Mapped[str | None] = mapped_column(Text)
    # The refused call, asked again by probes to see whether a permission was granted.
    probe_path: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index("ix_gates_state_next_probe", "state", "next_probe_at"),
        Index("ix_gates_company_id", "company_id"),
    )


class GateTransition(Base):
    """One transition of a gate (parked, needs_admin, released, moved, dormant, woken), in
    the order they were committed: the gates' feed (`app.feed.gates`). Append-only."""

    __tablename__ = "gate_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gate_id: Mapped[int] = mapped_column(BigInteger)
    scope_key: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(32))
    company_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    diagnosis: Mapped[str | None] = mapped_column(String(64))
    remediation: Mapped[str | None] = mapped_column(Text)
    # What else the transition says: who acted, the status seen, the projects of an incident.
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_gate_transitions_company_id_id", "company_id", "id"),)


class CredentialKind(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    AUTHORIZATION_CODE = "authorization_code"


class Credential(Base):
    """A principal the service calls Procore as: the app's service account or a connected user.

    Tokens are stored encrypted (MultiFernet over ENCRYPTION_KEY), never in clear.
    """

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[CredentialKind] = mapped_column(_enum(CredentialKind, "credential_kind"))
    label: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(200))
    procore_user_id: Mapped[int | None] = mapped_column(BigInteger)
    procore_login: Mapped[str | None] = mapped_column(String(320))
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the access token was issued: a 401 on a token this young is not about the token,
    # so it is not refreshed again (that would only burn refresh tokens).
    access_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set before a refresh is sent, cleared when its answer is committed: a value left behind
    # means the answer was lost and the refresh token is already dead at Procore.
    refresh_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    needs_reauth: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        # One app-level (client credentials) credential per client id, created on first use.
        Index(
            "uq_credentials_app_client",
            "client_id",
            unique=True,
            postgresql_where=text("kind = 'client_credentials'"),
        ),
    )


class CompanyCredential(Base):
    """Which credential serves a company: the one that last proved access to it."""

    __tablename__ = "company_credentials"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"))
    company_name: Mapped[str | None] = mapped_column(String(300))
    proved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OAuthState(Base):
    """A single-use `state` for the Connect-to-Procore flow, issued only by the service."""

    __tablename__ = "oauth_states"

    # SHA-256 of the state value: the value itself is only ever in the issued link.
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[int | None] = mapped_column(BigInteger)
    issued_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


resource_change_seq = Sequence("resource_change_seq", metadata=Base.metadata)


class Resource(Base):
    """The mirror: the latest known state of each Procore resource the service was told about."""

    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    resource_name: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Procore's `updated_at`: the newest wins, whatever order fetches finish in.
    procore_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Change cursor for downstream consumers: bumped from one sequence on every change.
    change_seq: Mapped[int] = mapped_column(
        BigInteger, resource_change_seq, server_default=resource_change_seq.next_value()
    )
    # The change_seq the row was first written with: a consumer whose position is below it
    # never heard of the resource (its change is a `resource.created`).
    first_change_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("company_id", "resource_name", "resource_id", name="uq_resources_key"),
        Index("ix_resources_change_seq", "change_seq"),
    )


class ProcoreCall(Base):
    """Audit of every call made to Procore: who was called, the answer, when."""

    __tablename__ = "procore_calls"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    credential_id: Mapped[int | None] = mapped_column(BigInteger)
    company_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(32))  # fetch | probe | diagnose | token | hooks
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int | None] = mapped_column(Integer)  # null: no answer (timeout, reset)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_procore_calls_at", "at"),
        Index("ix_procore_calls_company_at", "company_id", "at"),
        # Read again and again, and counting only these: the day's 403s per company (each
        # metrics refresh, GET /admin/summary) and the hour's probes and diagnoses (the probe
        # budget, each gate upkeep tick).
        Index(
            "ix_procore_calls_forbidden_at",
            "at",
            postgresql_include=["company_id"],
            postgresql_where=text("status = 403"),
        ),
        Index(
            "ix_procore_calls_probes_at",
            "at",
            postgresql_where=text("purpose IN ('probe', 'diagnose')"),
        ),
    )


class AdminAction(Base):
    """Every action taken through the admin API or CLI."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A short fingerprint of the token used, never the token.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class WorkerHeartbeat(Base):
    """Each worker process writes its heartbeat here; /health and `worker --check` read it."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    jobs_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class CompanyHook(Base):
    """A company's subscription: the hook it should have in our namespace, and its upkeep.

    A row is the request too: `sync_due_at` set means "reconcile this company's hook", written
    in the transaction that asked for it (a gate opening, the periodic discovery, an
    operator), so a crash between the request and the sync loses nothing.
    """

    __tablename__ = "company_hooks"

    company_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Procore's id of our hook, its status there ("active" | "disabled"), where it delivers.
    hook_id: Mapped[int | None] = mapped_column(BigInteger)
    hook_status: Mapped[str | None] = mapped_column(String(16))
    destination_url: Mapped[str | None] = mapped_column(String(500))
    triggers: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # SHA-256 of the Authorization value last applied: Procore may not show it back.
    auth_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The permitted projects as last listed: a new one is backfilled.
    project_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    installed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sync_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_changes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reenabled: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reenabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When Procore last showed the hook's status (only its v2.0 Webhooks API does); None:
    # never, so `hook_status` is not known.
    status_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the installer must do for the hooks to work (e.g. grant the Webhooks API tool).
    remediation: Mapped[str | None] = mapped_column(Text)
    # Events of discarded deliveries found through the Deliveries API and taken in.
    missed_recovered: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index(
            "ix_company_hooks_due", "sync_due_at", postgresql_where=text("sync_due_at IS NOT NULL")
        ),
    )


class TriggerState(StrEnum):
    ACTIVE = "active"
    # Procore refused the trigger (its answer is kept); asked again at the next sync.
    REFUSED = "refused"
    # Procore lists the event type in `except` of /webhooks/resources: never asked.
    NOT_SUBSCRIBABLE = "not_subscribable"


class HookTrigger(Base):
    """Each wanted (resource, event type) of a company's hook, as the last sync left it."""

    __tablename__ = "hook_triggers"

    company_id: Mapped[int] = mapped_column(
        ForeignKey("company_hooks.company_id", ondelete="CASCADE"), primary_key=True
    )
    resource_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[TriggerState] = mapped_column(_enum(TriggerState, "trigger_state"))
    trigger_id: Mapped[int | None] = mapped_column(BigInteger)
    # Procore's answer to the refused request (status and body excerpt), or why not asked.
    status: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ResyncStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ResyncRun(Base):
    """One backfill of a company (or one project, or one resource) into the mirror.

    `cursor` holds the planned parts (resource by project) with the next page of each, and is
    advanced in the transaction that writes a page to the mirror, so an interrupted run
    resumes where it stopped. `locked_until` is the lease of the worker running it.
    """

    __tablename__ = "resync_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[ResyncStatus] = mapped_column(_enum(ResyncStatus, "resync_status"))
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # One unfinished run per scope: asking again while one is pending or running joins it.
        Index(
            "uq_resync_runs_active_scope",
            "company_id",
            text("COALESCE(project_id, 0)"),
            text("COALESCE(resource_name, '')"),
            unique=True,
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        Index("ix_resync_runs_company_created", "company_id", "created_at"),
    )


class ResyncSeen(Base):
    """Resource ids a run listed, per part: what was not listed is gone once the part ends."""

    __tablename__ = "resync_seen"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("resync_runs.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(160), primary_key=True)
    resource_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class OutboxEntry(Base):
    """A fact downstream systems are told about (other than resource changes, which are the
    mirror's own feed), appended in the transaction that establishes it (app.feed.outbox)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    company_id: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DestinationState(StrEnum):
    OPEN = "open"
    # Failing: retried one message at a time with full-jitter backoff.
    SUSPECT = "suspect"
    # Failed DELIVERY_PARK_THRESHOLD times in a row: only probes until one succeeds.
    PARKED = "parked"


class Destination(Base):
    """A downstream endpoint that receives signed deliveries (Standard Webhooks)."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    # None: every event type / company / resource type.
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    company_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    resource_names: Mapped[list[str] | None] = mapped_column(ARRAY(String(128)))
    include_object: Mapped[bool] = mapped_column(server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    # The signing secret (`whsec_...`), encrypted with ENCRYPTION_KEY; during a rotation the
    # previous one signs too, until `previous_secret_expires_at`.
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    state: Mapped[DestinationState] = mapped_column(_enum(DestinationState, "destination_state"))
    failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    probe_attempt: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Messages in flight at once (slow start after a release, up to DELIVERY_CONCURRENCY).
    send_window: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # One sender at a time across all workers: the worker delivering holds this lease.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    delivered: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    failed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    dead: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DestinationCursor(Base):
    """Where a destination stands in each feed: everything up to `position` was delivered (or
    dead-lettered, or not wanted)."""

    __tablename__ = "destination_cursors"

    destination_id: Mapped[int] = mapped_column(
        ForeignKey("destinations.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class DeliveryAttempt(Base):
    """One HTTP attempt to deliver a message to a destination (pruned after a retention)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    # delivered | failed | dead | refused (the address was not allowed; nothing was sent)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    replay: Mapped[bool] = mapped_column(server_default=text("false"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_delivery_attempts_destination_id", "destination_id", "id"),
        Index("ix_delivery_attempts_at", "at"),
    )


class DeadLetter(Base):
    """A message a destination refused (4xx other than 408/429), kept with what was sent and
    what it answered, until it is replayed successfully."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set by an operator's replay; the next delivery round sends it again (before new work).
    replay_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replays: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Set when a replay was delivered: the letter is settled.
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_dead_letters_destination_id", "destination_id", "id"),
        Index(
            "ix_dead_letters_replay",
            "destination_id",
            "id",
            postgresql_where=text("replay_requested_at IS NOT NULL"),
        ),
    )


class JobStatus(StrEnum):
    """A write job's state (app.writes)."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    # Held by a gate (no call); released in submission order when it opens.
    PARKED = "parked"
    # A plain create's answer was lost and Procore cannot be asked whether it acted: an
    # operator resolves it (it exists: resolve with its id; it does not: replay).
    IN_DOUBT = "in_doubt"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A company's lane: the jobs still to run, taken in id (submission) order.
LANE_STATUSES = (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING)
JOB_FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class WriteJob(Base):
    """One change the connector asked to make in Procore, run by the workers (app.writes).

    The idempotency key is unique per company: submitting it again answers the same job.
    `sent_at` is set before a plain (non-sync) call is sent and cleared when its answer is
    written: found set on the next claim, it means the answer was lost.
    """

    __tablename__ = "write_jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str] = mapped_column(String(128))
    operation: Mapped[WriteKind] = mapped_column(_enum(WriteKind, "write_kind"))
    # The resource written: given for update and delete, Procore's id once created.
    resource_id: Mapped[int | None] = mapped_column(BigInteger)
    origin_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the request: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "write_job_status"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claims: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gate_id: Mapped[int | None] = mapped_column(ForeignKey("gates.id", ondelete="SET NULL"))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL")
    )
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Procore's answer for this job: the resource, or its per-item errors, or the error body.
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    submitted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("company_id", "idempotency_key", name="uq_write_jobs_idempotency"),
        # Each company's lane, in submission order; small however large the table grows.
        Index(
            "ix_write_jobs_lane",
            "company_id",
            "id",
            postgresql_where=text("status IN ('queued', 'retrying', 'running')"),
        ),
        Index(
            "ix_write_jobs_parked",
            "gate_id",
            "id",
            postgresql_where=text("status = 'parked'"),
        ),
        Index("ix_write_jobs_status_id", "status", "id"),
        Index("ix_write_jobs_company_status_id", "company_id", "status", "id"),
    )
