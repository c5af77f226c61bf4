"""install state: the tool scopes of the gates

A gate may guard one resource type (Procore "tool") in a company, or in one project of it
(FACTS.md §6: a 403 is the company's, one tool's everywhere, one tool's in one project, or one
project's). The gate row names its resource type.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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


def upgrade() -> None:
    op.add_column("gates", sa.Column("resource_name", sa.String(length=128), nullable=True))
    _scope_check(_SCOPES)


def downgrade() -> None:
    op.execute("DELETE FROM gates WHERE scope IN ('tool', 'project_tool')")
    _scope_check(_SCOPES_BEFORE)
    op.drop_column("gates", "resource_name")
