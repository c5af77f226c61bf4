"""Every feed behind one reading function: what comes after a consumer's position, as
messages, and the position to keep for next time.

Delivery to destinations keeps one position per source; a new source is one more member of
`Source` and one more branch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.db import SessionFactory
from app.feed import Feed, changes, horizon, latest, outbox
from app.feed import gates as gate_feed
from app.feed.messages import (
    RESOURCE_CREATED,
    RESOURCE_DELETED,
    RESOURCE_UPDATED,
    Message,
    Source,
    type_matches,
)

_FEEDS = {Source.RESOURCES: Feed.RESOURCES, Source.OUTBOX: Feed.OUTBOX, Source.GATES: Feed.GATES}


@dataclass(frozen=True, slots=True)
class Interest:
    """What a consumer wants: None means everything."""

    event_types: tuple[str, ...] | None = None
    company_ids: tuple[int, ...] | None = None
    resource_names: tuple[str, ...] | None = None

    def wants(self, message: Message) -> bool:
        return type_matches(message.type, self.event_types)

    def wants_source(self, source: Source) -> bool:
        if self.event_types is None:
            return True
        if source is Source.RESOURCES:
            return any(type_matches(t, self.event_types) for t in _RESOURCE_TYPES)
        if source is Source.GATES:
            return any(p.startswith("gate.") for p in self.event_types)
        return any(not p.startswith(("resource.", "gate.")) for p in self.event_types)


_RESOURCE_TYPES = (RESOURCE_CREATED, RESOURCE_UPDATED, RESOURCE_DELETED)


@dataclass(frozen=True, slots=True)
class Batch:
    messages: list[Message]
    # Where the consumer stands after this batch: past its last row, or at the horizon when
    # nothing more is there (rows it does not want are passed over too).
    position: int
    more: bool


def _ids(values: Sequence[int] | None) -> list[int] | None:
    return None if values is None else list(values)


async def head(sessions: SessionFactory, source: Source) -> int:
    """The source's horizon now (where a consumer that wants only new messages starts)."""
    if source is Source.GATES:
        async with sessions() as session:
            if not await gate_feed.transitions_available(session):
                return 0
    return await horizon(sessions, _FEEDS[source])


async def read(
    sessions: SessionFactory, source: Source, after: int, limit: int, interest: Interest
) -> Batch:
    """Up to `limit` rows of `source` after `after`, as the messages `interest` wants."""
    if source is Source.GATES:
        async with sessions() as session:
            if not await gate_feed.transitions_available(session):
                return Batch([], after, more=False)
    async with sessions() as session:
        if await latest(session, _FEEDS[source]) <= after:
            return Batch([], after, more=False)
    upto = await horizon(sessions, _FEEDS[source])
    if upto <= after:
        return Batch([], after, more=False)
    companies = _ids(interest.company_ids)
    async with sessions() as session:
        if source is Source.RESOURCES:
            rows = await changes.read(
                session,
                after,
                upto,
                limit,
                company_ids=companies,
                resource_names=None
                if interest.resource_names is None
                else list(interest.resource_names),
            )
            found = [changes.message(row, after) for row in rows]
        elif source is Source.OUTBOX:
            found = [
                outbox.message(row)
                for row in await outbox.read(session, after, upto, limit, company_ids=companies)
            ]
        else:
            found = await gate_feed.read_transitions(
                session, after, upto, limit, company_ids=companies
            )
    more = len(found) >= limit
    position = found[-1].position if more else upto
    return Batch([m for m in found if interest.wants(m)], position, more)
