"""company_hooks: status seen, remediation, recovered deliveries; hook_triggers per trigger

Each wanted (resource, event type) of a company's hook is recorded with its state (active,
refused with Procore's answer, or not subscribable), so one refused trigger is visible and
does not hide the others.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "company_hooks", sa.Column("status_seen_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("company_hooks", sa.Column("remediation", sa.Text(), nullable=True))
    op.add_column(
        "company_hooks",
        sa.Column("missed_recovered", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "hook_triggers",
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_name", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "refused",
                "not_subscribable",
                name="trigger_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("trigger_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company_hooks.company_id"],
            name=op.f("fk_hook_triggers_company_id_company_hooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "company_id", "resource_name", "event_type", name=op.f("pk_hook_triggers")
        ),
    )


def downgrade() -> None:
    op.drop_table("hook_triggers")
    op.drop_column("company_hooks", "missed_recovered")
    op.drop_column("company_hooks", "remediation")
    op.drop_column("company_hooks", "status_seen_at")
