"""install state: the tool scopes of the gates, and their transitions as a feed

A gate may guard one resource type (Procore "tool") in a company, or in one project of it
(FACTS.md §6: a 403 is the company's, one tool's everywhere, one tool's in one project, or one
project's). The gate row names its resource type; its key may be longer. A parked gate may be
dormant (no probes until an outside signal wakes it).

`gate_transitions`: one row per transition of a gate (parked, needs_admin, released, moved,
dormant, woken), append-only (a trigger refuses updates and deletes), read by cursor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCOPES_BEFORE = ("credential", "company", "project")
_SCOPES = (*_SCOPES_BEFORE, "tool", "project_tool")


def _scope_check(values: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_gates_gate_scope"), "gates", type_="check")
    listed = ", ".join(f"'{v}'" for v in values)
    op.create_check_constraint(op.f("ck_gates_gate_scope"), "gates", f"scope IN ({listed})")


_APPEND_ONLY = (
    """
    CREATE FUNCTION gate_transitions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'gate_transitions is append-only';
    END $$
    """,
    """
    CREATE TRIGGER gate_transitions_append_only BEFORE UPDATE OR DELETE ON gate_transitions
        FOR EACH ROW EXECUTE FUNCTION gate_transitions_append_only()
    """,
)


def upgrade() -> None:
    op.add_column("gates", sa.Column("resource_name", sa.String(length=128), nullable=True))
    op.alter_column("gates", "scope_key", type_=sa.String(length=255))
    op.add_column("gates", sa.Column("dormant_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("gates", sa.Column("woken_at", sa.DateTime(timezone=True), nullable=True))
    _scope_check(_SCOPES)
    op.create_table(
        "gate_transitions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("gate_id", sa.BigInteger(), nullable=False),
        sa.Column("scope_key", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_name", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("diagnosis", sa.String(length=64), nullable=True),
        sa.Column("remediation", sa.Text(), nullable=True),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_transitions")),
    )
    op.create_index("ix_gate_transitions_company_id_id", "gate_transitions", ["company_id", "id"])
    for statement in _APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("gate_transitions")
    op.execute("DROP FUNCTION gate_transitions_append_only()")
    op.execute("DELETE FROM gates WHERE scope IN ('tool', 'project_tool')")
    _scope_check(_SCOPES_BEFORE)
    op.alter_column("gates", "scope_key", type_=sa.String(length=96))
    op.drop_column("gates", "woken_at")
    op.drop_column("gates", "dormant_since")
    op.drop_column("gates", "resource_name")
