"""procore_calls: index the 403s and the probes by time

Two reads of the call audit run on a timer: the 403s of the last day per company (the metrics
gauge, GET /admin/summary) and the probes and diagnoses of the last hour (the probe budget, on
every gate upkeep tick). Through `ix_procore_calls_at` each read every call of its window, a
day's worth at one row per call to Procore. These partial indexes hold only the rows the reads
count: a few per thousand calls.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, columns, included columns, predicate)
_INDEXES = (
    ("ix_procore_calls_forbidden_at", ["at"], ["company_id"], "status = 403"),
    ("ix_procore_calls_probes_at", ["at"], [], "purpose IN ('probe', 'diagnose')"),
)


def upgrade() -> None:
    # CONCURRENTLY: the workers keep auditing calls while the indexes are built. A build cut
    # short (a killed deploy, a lock timeout) leaves an INVALID index, which `IF NOT EXISTS`
    # would take for done: it is dropped first, so a rerun builds it anew.
    with op.get_context().autocommit_block():
        for name, columns, included, where in _INDEXES:
            op.drop_index(
                name, table_name="procore_calls", postgresql_concurrently=True, if_exists=True
            )
            op.create_index(
                name,
                "procore_calls",
                columns,
                postgresql_include=included,
                postgresql_where=sa.text(where),
                postgresql_concurrently=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, *_ in _INDEXES:
            op.drop_index(
                name, table_name="procore_calls", postgresql_concurrently=True, if_exists=True
            )
