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

_NAME = "ix_events_finished_at"


def _rebuild(where: sa.TextClause | None) -> None:
    """Replace the index with one of the given predicate, while the table keeps taking
    webhooks: built CONCURRENTLY under a temporary name, then swapped in. A build cut short
    (a killed deploy, a lock timeout) leaves an INVALID index under the temporary name, which
    `IF NOT EXISTS` would take for done: it is dropped first, so a rerun builds it anew."""
    temporary = f"{_NAME}_next"
    with op.get_context().autocommit_block():
        op.drop_index(temporary, table_name="events", postgresql_concurrently=True, if_exists=True)
        op.create_index(
            temporary,
            "events",
            ["finished_at"],
            postgresql_where=where,
            postgresql_concurrently=True,
        )
        op.drop_index(_NAME, table_name="events", postgresql_concurrently=True, if_exists=True)
        op.execute(f"ALTER INDEX {temporary} RENAME TO {_NAME}")


def upgrade() -> None:
    _rebuild(sa.text("finished_at IS NOT NULL"))


def downgrade() -> None:
    _rebuild(None)
