"""Retention of finished events: deleted EVENTS_RETENTION_DAYS after they finished.

A finished event (`done`, `skipped`, `ignored`, `unsupported`, `dead`) has served its purpose:
its resource is mirrored, its change handed on, its failure reported. Kept for good, the events
table would grow by every webhook ever received. An upkeep tick deletes those that finished
longer ago than the retention, oldest first, in batches of short transactions (the partial
index on `finished_at` finds them without reading anything else), a bounded number per run
(`app.db.prune_older_than`), so a large backlog, after a first enabling say, is worked off
over many runs without a long lock.

Unfinished events (waiting, processing, parked) are never deleted, however old. A `dead` event
can be replayed until it is deleted; a replayed one is unfinished again and keeps its row. The
retention is at least a day: the dedupe key of an event must outlive Procore's retries of its
delivery (up to 12 hours, FACTS.md §2), or a late retry would be stored and processed again.
`0` keeps every event.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text

from app.db import PRUNE_BATCH, PRUNE_BATCHES_PER_RUN, SessionFactory, prune_older_than
from app.models import FINAL_STATUSES
from app.settings import Settings

_FINAL = ", ".join(f"'{status.value}'" for status in FINAL_STATUSES)

# The ids as an array (one init plan), so the delete finds its rows by primary key: with
# `id IN (subquery)` Postgres joins the batch against a scan of the whole table. The final
# statuses are named beside the finish time, so an unfinished row can never match.
_PURGE = text(
    f"""
    DELETE FROM events WHERE id = ANY(ARRAY(
        SELECT id FROM events
        WHERE finished_at IS NOT NULL
          AND finished_at < now() - make_interval(secs => :seconds)
          AND status IN ({_FINAL})
        ORDER BY finished_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ))
    """  # noqa: S608 (the statuses are the model's constants)
)


class RetentionDeps(Protocol):
    settings: Settings
    sessions: SessionFactory


async def purge_finished(
    deps: RetentionDeps,
    *,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES_PER_RUN,
) -> int:
    """Delete finished events older than the retention; returns how many went."""
    days = deps.settings.events_retention_days
    if days == 0:
        return 0
    return await prune_older_than(
        deps.sessions, _PURGE, table="events", days=days, batch=batch, batches=batches
    )
