"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 06:59:18.282551
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("resource_change_seq")))
    op.create_table(
        "admin_actions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_actions")),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "client_credentials",
                "authorization_code",
                name="credential_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("procore_user_id", sa.BigInteger(), nullable=True),
        sa.Column("procore_login", sa.String(length=320), nullable=True),
        sa.Column("access_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("access_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_reauth", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
    )
    op.create_index(
        "uq_credentials_app_client",
        "credentials",
        ["client_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'client_credentials'"),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=True),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    op.create_table(
        "procore_calls",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("credential_id", sa.BigInteger(), nullable=True),
        sa.Column("company_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procore_calls")),
    )
    op.create_index("ix_procore_calls_at", "procore_calls", ["at"], unique=False)
    op.create_index(
        "ix_procore_calls_company_at", "procore_calls", ["company_id", "at"], unique=False
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_name", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("procore_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "fetched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "change_seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('resource_change_seq')"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint("company_id", "resource_name", "resource_id", name="uq_resources_key"),
    )
    op.create_index("ix_resources_change_seq", "resources", ["change_seq"], unique=False)
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jobs_done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_table(
        "company_credentials",
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("credential_id", sa.BigInteger(), nullable=False),
        sa.Column("company_name", sa.String(length=300), nullable=True),
        sa.Column(
            "proved_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_company_credentials_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_credentials")),
    )
    op.create_table(
        "gates",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("scope_key", sa.String(length=96), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "credential",
                "company",
                "project",
                name="gate_scope",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("credential_id", sa.BigInteger(), nullable=True),
        sa.Column("company_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "suspect",
                "parked",
                name="gate_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("signals", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_signal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_by", sa.String(length=32), nullable=True),
        sa.Column("probe_attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("body_excerpt", sa.Text(), nullable=True),
        sa.Column("diagnosis", sa.String(length=64), nullable=True),
        sa.Column("remediation", sa.Text(), nullable=True),
        sa.Column("probe_path", sa.String(length=500), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_gates_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gates")),
        sa.UniqueConstraint("scope_key", name=op.f("uq_gates_scope_key")),
    )
    op.create_index("ix_gates_company_id", "gates", ["company_id"], unique=False)
    op.create_index("ix_gates_state_next_probe", "gates", ["state", "next_probe_at"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("payload_version", sa.String(length=8), nullable=False),
        sa.Column("procore_event_id", sa.BigInteger(), nullable=True),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_name", sa.String(length=128), nullable=True),
        sa.Column("resource_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("source_application_id", sa.String(length=128), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "processing",
                "retrying",
                "parked",
                "done",
                "skipped",
                "dead",
                "ignored",
                "unsupported",
                name="event_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claims", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gate_id", sa.BigInteger(), nullable=True),
        sa.Column("credential_id", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_events_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["gate_id"], ["gates.id"], name=op.f("fk_events_gate_id_gates"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_events_dedupe_key")),
    )
    op.create_index(
        "ix_events_company_status_key",
        "events",
        ["company_id", "status", "dedupe_key"],
        unique=False,
    )
    op.create_index(
        "ix_events_due",
        "events",
        ["company_id", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'processing')"),
    )
    op.create_index("ix_events_finished_at", "events", ["finished_at"], unique=False)
    op.create_index(
        "ix_events_gate_parked",
        "events",
        ["gate_id", "dedupe_key"],
        unique=False,
        postgresql_where=sa.text("status = 'parked'"),
    )
    op.create_index(
        "ix_events_resource_pending",
        "events",
        ["company_id", "resource_name", "resource_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'processing', 'parked')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_events_resource_pending",
        table_name="events",
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'processing', 'parked')"),
    )
    op.drop_index(
        "ix_events_gate_parked", table_name="events", postgresql_where=sa.text("status = 'parked'")
    )
    op.drop_index("ix_events_finished_at", table_name="events")
    op.drop_index(
        "ix_events_due",
        table_name="events",
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'processing')"),
    )
    op.drop_index("ix_events_company_status_key", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_gates_state_next_probe", table_name="gates")
    op.drop_index("ix_gates_company_id", table_name="gates")
    op.drop_table("gates")
    op.drop_table("company_credentials")
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_resources_change_seq", table_name="resources")
    op.drop_table("resources")
    op.drop_index("ix_procore_calls_company_at", table_name="procore_calls")
    op.drop_index("ix_procore_calls_at", table_name="procore_calls")
    op.drop_table("procore_calls")
    op.drop_table("oauth_states")
    op.drop_index(
        "uq_credentials_app_client",
        table_name="credentials",
        postgresql_where=sa.text("kind = 'client_credentials'"),
    )
    op.drop_table("credentials")
    op.drop_table("admin_actions")
    op.execute(sa.schema.DropSequence(sa.Sequence("resource_change_seq")))
