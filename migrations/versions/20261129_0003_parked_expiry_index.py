"""events: index the parked rows by receipt time (the expiry scan)

The gate upkeep looks for parked events older than the retention on every tick. Without this
index that look is a scan of the whole events table, which grows with every event received.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # CONCURRENTLY: a live events table keeps taking webhooks while the index is built.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_events_parked_received",
            "events",
            ["received_at"],
            postgresql_where=sa.text("status = 'parked'"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_events_parked_received",
            table_name="events",
            postgresql_concurrently=True,
            if_exists=True,
        )
