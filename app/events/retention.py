"""Retention of finished events: deleted EVENTS_RETENTION_DAYS after they finished.

A finished event (`done`, `skipped`, `ignored`, `unsupported`, `dead`) has served its purpose:
its resource is mirrored, its change handed on, its failure reported. Kept for good, the events
table would grow by every webhook ever received. An upkeep tick deletes those that finished
longer ago than the retention, oldest first, in batches of short transactions (the partial
index on `finished_at` finds them without reading anything else), so a large backlog after a
long outage or a first enabling is worked off over a few ticks without a long lock.

Unfinished events (waiting, processing, parked) are never deleted, however old. A `dead` event
can be replayed until it is deleted; a replayed one is unfinished again and keeps its row. The
retention is at least a day: the dedupe key of an event must outlive Procore's retries of its
delivery (up to 12 hours, FACTS.md §2), or a late retry would be stored and processed again.
`0` keeps every event.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text

from app import metrics
from app.db import SessionFactory, delete_in_batches
from app.logs import get_logger
from app.settings import Settings

log = get_logger(__name__)

# The ids as an array (one init plan), so the delete finds its rows by primary key: with
# `id IN (subquery)` Postgres joins the batch against a scan of the whole table.
_PURGE = text(
    """
    DELETE FROM events WHERE id = ANY(ARRAY(
        SELECT id FROM events
        WHERE finished_at IS NOT NULL
          AND finished_at < now() - make_interval(secs => :seconds)
        ORDER BY finished_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ))
    """
)

# Rows per transaction, and transactions per upkeep tick (at most 50,000 rows a tick).
PURGE_BATCH = 5000
PURGE_BATCHES_PER_TICK = 10


class RetentionDeps(Protocol):
    settings: Settings
    sessions: SessionFactory


async def purge_finished(
    deps: RetentionDeps,
    *,
    batch: int = PURGE_BATCH,
    batches: int = PURGE_BATCHES_PER_TICK,
) -> int:
    """Delete finished events older than the retention; returns how many went."""
    days = deps.settings.events_retention_days
    if days == 0:
        return 0
    purged = await delete_in_batches(
        deps.sessions, _PURGE, {"seconds": days * 86400}, batch=batch, batches=batches
    )
    if purged:
        log.info("events.purged", events=purged, retention_days=days)
        metrics.rows_pruned("events", purged)
    return purged
