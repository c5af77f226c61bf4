"""What a downstream consumer is told: the event types and one message shape, the same for a
destination's signed delivery and for the live stream.

A message body follows the Standard Webhooks specification: `{"type", "timestamp", "data"}`.
`data` carries the ids (company, project, resource name and id), the position in its feed
(`change_seq` for resource changes) and, when the consumer asked for it, the object itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    """The feeds messages come from, each ordered by its own position."""

    RESOURCES = "resources"
    OUTBOX = "outbox"
    GATES = "gates"


# Message ids are stable across attempts and destinations: a prefix per source + position.
_ID_PREFIX = {Source.RESOURCES: "msg_r", Source.OUTBOX: "msg_o", Source.GATES: "msg_g"}

RESOURCE_CREATED = "resource.created"
RESOURCE_UPDATED = "resource.updated"
RESOURCE_DELETED = "resource.deleted"
HOOK_DISABLED = "hook.disabled"
HOOK_REENABLED = "hook.reenabled"
RESYNC_FINISHED = "resync.finished"
# A write job's outcome (app.writes): `job.parked` also for a create left in doubt.
JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
JOB_PARKED = "job.parked"
JOB_CANCELLED = "job.cancelled"
JOB_TYPES = (JOB_SUCCEEDED, JOB_FAILED, JOB_PARKED, JOB_CANCELLED)
# Gate transitions are `gate.<kind>`, kind as the gates' feed records it.
# The gates' transitions (app.gates.policy.Transition; a test keeps the two equal).
GATE_KINDS = ("parked", "needs_admin", "released", "moved", "dormant", "woken")

EVENT_TYPES: tuple[str, ...] = (
    RESOURCE_CREATED,
    RESOURCE_UPDATED,
    RESOURCE_DELETED,
    *(f"gate.{kind}" for kind in GATE_KINDS),
    HOOK_DISABLED,
    HOOK_REENABLED,
    RESYNC_FINISHED,
    *JOB_TYPES,
)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.partition(".")[0] for t in EVENT_TYPES))


def unknown_types(patterns: Iterable[str]) -> list[str]:
    """Entries of an `event_types` filter that name no event type: each must be a type, or
    `<family>.*` (e.g. `gate.*`)."""
    known = set(EVENT_TYPES) | {f"{family}.*" for family in FAMILIES}
    return [p for p in patterns if p not in known]


def type_matches(event_type: str, patterns: Sequence[str] | None) -> bool:
    """No filter matches everything; otherwise an exact type or its `<family>.*`."""
    if patterns is None:
        return True
    family = event_type.partition(".")[0]
    return event_type in patterns or f"{family}.*" in patterns


@dataclass(frozen=True, slots=True)
class Message:
    source: Source
    position: int
    type: str
    occurred_at: datetime
    company_id: int | None
    # Messages with the same key are delivered in position order (one resource, one gate).
    ordering_key: str
    data: dict[str, Any]
    # The resource itself (resource changes only), sent to consumers that ask for it.
    object: dict[str, Any] | None = field(default=None)

    @property
    def id(self) -> str:
        return f"{_ID_PREFIX[self.source]}{self.position}"

    def body(self, *, include_object: bool) -> dict[str, Any]:
        data = dict(self.data)
        if include_object and self.source is Source.RESOURCES:
            data["object"] = self.object
        return {"type": self.type, "timestamp": _iso(self.occurred_at), "data": data}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
