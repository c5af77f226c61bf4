"""events: index only the finished rows by finish time

`ix_events_finished_at` held every row, so each webhook stored `queued` (no finish time yet)
cost an index entry that nothing reads. Rows enter it when they finish (the same update that
already changes their status), which is what a look by finish time (an age-based clean-up of
finished events) needs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # CONCURRENTLY: a live events table keeps taking webhooks while the index is rebuilt; the
    # new one is built under a temporary name before the old one goes.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_events_finished_at_new",
            "events",
            ["finished_at"],
            postgresql_where=sa.text("finished_at IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_events_finished_at",
            table_name="events",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.execute("ALTER INDEX ix_events_finished_at_new RENAME TO ix_events_finished_at")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_events_finished_at_all",
            "events",
            ["finished_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_events_finished_at",
            table_name="events",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.execute("ALTER INDEX ix_events_finished_at_all RENAME TO ix_events_finished_at")
