"""Release and expiry: parked work leaves opened gates in received (ULID) order, in paced
batches; work parked past the retention ends `dead` (expired_while_parked).

The order and the expiry are rules of `app.gates.policy` (`release_batches`, `expired`) that
must run in SQL (over every parked row, under concurrent workers); tests run the same
generated rows through both and compare.
"""

from __future__ import annotations

from sqlalchemy import text

from app import metrics
from app.gates.deps import GatesDeps
from app.logs import get_logger

log = get_logger(__name__)

_OPENED_WITH_PARKED = text(
    """
    SELECT g.id, g.company_id FROM gates g
    WHERE g.state <> 'parked'
      AND EXISTS (SELECT 1 FROM events e WHERE e.gate_id = g.id AND e.status = 'parked')
    """
)

_COMPANY_BACKLOG = text(
    """
    SELECT count(*) FROM events
    WHERE company_id = :company_id AND status IN ('queued', 'retrying', 'processing')
    """
)

# Released in received (ULID) order: `next_attempt_at` steps by a microsecond per rank, so the
# dispatcher (which takes due rows by next_attempt_at) hands them out in that order.
_RELEASE = text(
    """
    WITH picked AS (
        SELECT id, dedupe_key FROM events
        WHERE gate_id = :gate_id AND status = 'parked'
        ORDER BY dedupe_key
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), ranked AS (
        SELECT id, row_number() OVER (ORDER BY dedupe_key) AS rank FROM picked
    )
    UPDATE events e SET status = 'queued', gate_id = NULL, locked_until = NULL,
        next_attempt_at = now() + ranked.rank * interval '1 microsecond'
    FROM ranked WHERE e.id = ranked.id
    RETURNING e.id
    """
)

_EXPIRE = text(
    """
    UPDATE events SET status = 'dead', last_error = 'expired_while_parked', finished_at = now()
    WHERE id IN (
        SELECT id FROM events
        WHERE status = 'parked' AND received_at < now() - make_interval(secs => :seconds)
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def release_opened(deps: GatesDeps) -> int:
    """Return parked events of opened gates to the queue, a batch per gate per tick, and only
    once the company's previous batch has drained (no stampede on Procore)."""
    batch = deps.settings.release_batch_size
    released = 0
    async with deps.sessions() as session, session.begin():
        gates = (await session.execute(_OPENED_WITH_PARKED)).all()
        for gate in gates:
            backlog = (
                (
                    await session.execute(_COMPANY_BACKLOG, {"company_id": gate.company_id})
                ).scalar_one()
                if gate.company_id is not None
                else 0
            )
            room = batch - int(backlog)
            if room <= 0:
                continue
            rows = (await session.execute(_RELEASE, {"gate_id": gate.id, "batch": room})).all()
            released += len(rows)
            if rows:
                log.info("gate.released", gate_id=gate.id, events=len(rows))
    return released


async def expire_parked(deps: GatesDeps, *, batch: int = 1000) -> int:
    async with deps.sessions() as session, session.begin():
        rows = (
            await session.execute(
                _EXPIRE,
                {"seconds": deps.settings.parked_retention_days * 86400, "batch": batch},
            )
        ).all()
    if rows:
        log.warning("events.expired_while_parked", events=len(rows))
        metrics.events_expired(len(rows))
    return len(rows)
