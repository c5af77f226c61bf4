"""write_jobs: the connector's own changes to Procore

Each job names a registered resource, an operation and a payload; the idempotency key is
unique per company. A company's unfinished jobs form its lane, taken in submission order.
Their outcomes go to the outbox (job.succeeded, job.failed, job.parked, job.cancelled).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "write_jobs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_name", sa.String(length=128), nullable=False),
        sa.Column(
            "operation",
            sa.Enum(
                "create",
                "update",
                "delete",
                "sync",
                name="write_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("resource_id", sa.BigInteger(), nullable=True),
        sa.Column("origin_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "retrying",
                "parked",
                "in_doubt",
                "succeeded",
                "failed",
                "cancelled",
                name="write_job_status",
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
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gate_id", sa.BigInteger(), nullable=True),
        sa.Column("credential_id", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("answer", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
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
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_write_jobs_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["gate_id"], ["gates.id"], name=op.f("fk_write_jobs_gate_id_gates"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_jobs")),
        sa.UniqueConstraint("company_id", "idempotency_key", name="uq_write_jobs_idempotency"),
    )
    op.create_index(
        "ix_write_jobs_company_status_id",
        "write_jobs",
        ["company_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_write_jobs_lane",
        "write_jobs",
        ["company_id", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'running')"),
    )
    op.create_index(
        "ix_write_jobs_parked",
        "write_jobs",
        ["gate_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'parked'"),
    )
    op.create_index("ix_write_jobs_status_id", "write_jobs", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_write_jobs_status_id", table_name="write_jobs")
    op.drop_index(
        "ix_write_jobs_parked",
        table_name="write_jobs",
        postgresql_where=sa.text("status = 'parked'"),
    )
    op.drop_index(
        "ix_write_jobs_lane",
        table_name="write_jobs",
        postgresql_where=sa.text("status IN ('queued', 'retrying', 'running')"),
    )
    op.drop_index("ix_write_jobs_company_status_id", table_name="write_jobs")
    op.drop_table("write_jobs")
