"""subscriptions: company hooks, resync runs and what they listed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "company_hooks",
        sa.Column("company_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hook_id", sa.BigInteger(), nullable=True),
        sa.Column("hook_status", sa.String(length=16), nullable=True),
        sa.Column("destination_url", sa.String(length=500), nullable=True),
        sa.Column("triggers", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("auth_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("project_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_changes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reenabled", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reenabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_hooks")),
    )
    op.create_index(
        "ix_company_hooks_due",
        "company_hooks",
        ["sync_due_at"],
        unique=False,
        postgresql_where=sa.text("sync_due_at IS NOT NULL"),
    )
    op.create_table(
        "resync_runs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_name", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "running",
                "done",
                "failed",
                name="resync_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("cursor", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resync_runs")),
    )
    op.create_index(
        "uq_resync_runs_active_scope",
        "resync_runs",
        ["company_id", sa.text("COALESCE(project_id, 0)"), sa.text("COALESCE(resource_name, '')")],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.create_index(
        "ix_resync_runs_company_created", "resync_runs", ["company_id", "created_at"], unique=False
    )
    op.create_table(
        "resync_seen",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.String(length=160), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["resync_runs.id"],
            name=op.f("fk_resync_seen_run_id_resync_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "part", "resource_id", name=op.f("pk_resync_seen")),
    )


def downgrade() -> None:
    op.drop_table("resync_seen")
    op.drop_index("ix_resync_runs_company_created", table_name="resync_runs")
    op.drop_index(
        "uq_resync_runs_active_scope",
        table_name="resync_runs",
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.drop_table("resync_runs")
    op.drop_index(
        "ix_company_hooks_due",
        table_name="company_hooks",
        postgresql_where=sa.text("sync_due_at IS NOT NULL"),
    )
    op.drop_table("company_hooks")
