"""The gauges that describe Postgres, read at scrape time, at most once per interval.

Prometheus scrapes every replica every few seconds; one small statement per refresh (index-only
reads: the due and parked partial indexes, the small gates and heartbeat tables) keeps that
cheap however many metrics there are. A failed read keeps the previous values and lets
`database_state_age_seconds` grow, so stale numbers are visible rather than silently wrong.
"""

from __future__ import annotations

import asyncio
import math
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import metrics
from app.logs import get_logger

log = get_logger(__name__)

_STATE = text(
    """
    WITH due AS (
        SELECT count(*) AS depth,
               extract(epoch FROM now() - min(next_attempt_at)) AS oldest_due_s
        FROM events
        WHERE status IN ('queued', 'retrying', 'processing') AND next_attempt_at <= now()
          AND (status <> 'processing' OR locked_until < now())
    )
    SELECT
        due.depth,
        due.oldest_due_s,
        (SELECT count(*) FROM events WHERE status = 'parked') AS parked_events,
        (SELECT extract(epoch FROM now() - min(parked_at)) FROM gates WHERE state = 'parked')
            AS oldest_parked_gate_s,
        (SELECT extract(epoch FROM now() - max(seen_at)) FROM worker_heartbeats)
            AS heartbeat_age_s,
        (SELECT coalesce(json_agg(json_build_array(scope, state, n)), '[]'::json)
         FROM (SELECT scope, state, count(*) AS n FROM gates GROUP BY scope, state) g)
            AS gates,
        (SELECT coalesce(json_object_agg(state, n), '{}'::json)
         FROM (SELECT state, count(*) AS n FROM destinations WHERE enabled GROUP BY state) d)
            AS destinations,
        (SELECT coalesce(max((SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                              FROM resource_change_seq) - coalesce(c.position, 0)), 0)
         FROM destinations d LEFT JOIN destination_cursors c
           ON c.destination_id = d.id AND c.source = 'resources'
         WHERE d.enabled) AS delivery_backlog,
        (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL) AS dead_letters,
        -- Procore's Integration Health counts every 403 (FACTS.md §8): the day's, per company.
        (SELECT coalesce(json_object_agg(company_id, n), '{}'::json)
         FROM (SELECT company_id, count(*) AS n FROM procore_calls
               WHERE status = 403 AND at > now() - interval '1 day' AND company_id IS NOT NULL
               GROUP BY company_id ORDER BY n DESC LIMIT 100) f) AS forbidden_24h
    FROM due
    """
)

_TIMEOUT_S = 2.0


class DatabaseGauges:
    """One per api process; `refresh` is called by GET /metrics before it renders."""

    def __init__(self, engine: AsyncEngine, *, interval_s: float) -> None:
        self._engine = engine
        self._interval = interval_s
        self._lock = asyncio.Lock()
        self._read_at: float | None = None

    async def refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < self._interval:
                self._publish_age(now)
                return
            try:
                await asyncio.wait_for(self._read(), _TIMEOUT_S)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                log.warning("metrics.database_unreadable", error=f"{type(exc).__name__}")
            else:
                self._read_at = now
            self._publish_age(now)

    def _publish_age(self, now: float) -> None:
        age = math.inf if self._read_at is None else now - self._read_at
        metrics.DATABASE_STATE_AGE.set(age)

    async def _read(self) -> None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_STATE)).one()
        metrics.QUEUE_DEPTH.set(int(row.depth))
        metrics.QUEUE_OLDEST_DUE.set(float(row.oldest_due_s or 0.0))
        metrics.PARKED_EVENTS.set(int(row.parked_events))
        metrics.OLDEST_PARKED_GATE.set(float(row.oldest_parked_gate_s or 0.0))
        beat = row.heartbeat_age_s
        metrics.WORKER_HEARTBEAT_AGE.set(math.inf if beat is None else float(beat))
        by_state = {str(state): int(n) for state, n in dict(row.destinations).items()}
        for state in metrics.DESTINATION_STATES:
            metrics.DESTINATIONS.labels(state).set(by_state.get(state, 0))
        metrics.DELIVERY_BACKLOG.set(max(0, int(row.delivery_backlog)))
        metrics.DEAD_LETTERS.set(int(row.dead_letters))
        metrics.FORBIDDEN_24H.clear()
        for company, n in dict(row.forbidden_24h).items():
            metrics.FORBIDDEN_24H.labels(str(company)).set(int(n))
        counts = {(str(scope), str(state)): int(n) for scope, state, n in row.gates}
        # Every combination is set, so a gate that left a state shows 0 rather than vanishing.
        for scope in metrics.GATE_SCOPES:
            for state in metrics.GATE_STATES:
                metrics.GATES.labels(scope, state).set(counts.get((scope, state), 0))
