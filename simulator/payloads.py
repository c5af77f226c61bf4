"""Webhook event bodies in Procore's v2.0, v3.0 and v4.0 shapes (FACTS.md §1). Pure.

A `Change` says what happened (one user action); an `EventIdentity` is the id pair one hook
delivery carries. `render` turns both into the exact JSON object Procore POSTs.

- v2.0: `id` int64 (above 2^53, as real ids are), `ulid`, `timestamp` with microseconds and
  `Z`, `metadata` with the five `source_*` fields, `user_id`, `company_id`, `project_id`
  (null or absent for company-level resources), `api_version`, `event_type`,
  `resource_name`, `resource_id`.
- v3.0: v2.0 plus `related_resources` (usually empty).
- v4.0: every id a string, `id` is a ULID (no `ulid`), `reason` and `resource_type` replace
  `event_type` and `resource_name`, no `metadata`, no `api_version`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ulid import ULID

FIRST_V2_ID = 2**53 + 1


class PayloadVersion(StrEnum):
    V2 = "v2.0"
    V3 = "v3.0"
    V4 = "v4.0"


@dataclass(frozen=True, slots=True)
class RelatedResource:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Change:
    event_type: str
    resource_name: str
    resource_id: int
    company_id: int
    project_id: int | None
    user_id: int
    timestamp: datetime
    # v4 `reason`; defaults to `event_type` (newer resources use past tense, e.g. "updated").
    reason: str | None = None
    source_application_id: str | None = None
    source_operation_id: int | None = None
    related_resources: tuple[RelatedResource, ...] = ()


@dataclass(frozen=True, slots=True)
class EventIdentity:
    id: int
    ulid: str


@dataclass(frozen=True, slots=True)
class ShapeOptions:
    # Procore has been seen sending both "v2" and "v2.0" as api_version.
    short_api_version: bool = False
    # For company-level resources project_id is sometimes null, sometimes absent.
    omit_null_project_id: bool = False


class EventIds:
    """Issues v2 ids (a counter above 2^53) and monotonic ULIDs from a seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next_id = FIRST_V2_ID + rng.randrange(10**9)
        self._last_ms = -1
        self._last_random = 0

    def next(self, moment: datetime) -> EventIdentity:
        event_id = self._next_id
        self._next_id += 1 + self._rng.randrange(16)
        return EventIdentity(event_id, self._ulid(moment))

    def _ulid(self, moment: datetime) -> str:
        # Monotonic within a millisecond so ULIDs keep sorting in creation order.
        ms = int(moment.timestamp() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._last_random += 1
        else:
            self._last_ms = ms
            self._last_random = self._rng.getrandbits(79)
        return str(ULID.from_bytes(ms.to_bytes(6, "big") + self._last_random.to_bytes(10, "big")))


def iso_micros(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render(
    change: Change, ids: EventIdentity, version: PayloadVersion, options: ShapeOptions
) -> dict[str, Any]:
    if version is PayloadVersion.V4:
        return _v4(change, ids, options)
    body: dict[str, Any] = {
        "id": ids.id,
        "ulid": ids.ulid,
        "timestamp": iso_micros(change.timestamp),
        "metadata": {
            "source_user_id": change.user_id,
            "source_company_id": change.company_id,
            "source_project_id": change.project_id,
            "source_operation_id": change.source_operation_id,
            "source_application_id": change.source_application_id,
        },
        "user_id": change.user_id,
        "company_id": change.company_id,
    }
    if change.project_id is not None or not options.omit_null_project_id:
        body["project_id"] = change.project_id
    label = "v2.0" if version is PayloadVersion.V2 else "v3.0"
    body["api_version"] = label[:2] if options.short_api_version else label
    body["event_type"] = change.event_type
    body["resource_name"] = change.resource_name
    body["resource_id"] = change.resource_id
    if version is PayloadVersion.V3:
        body["related_resources"] = [{"id": r.id, "name": r.name} for r in change.related_resources]
    return body


def _v4(change: Change, ids: EventIdentity, options: ShapeOptions) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ids.ulid,
        "timestamp": iso_micros(change.timestamp),
        "reason": change.reason or change.event_type,
        "company_id": str(change.company_id),
    }
    if change.project_id is not None or not options.omit_null_project_id:
        body["project_id"] = None if change.project_id is None else str(change.project_id)
    body["user_id"] = str(change.user_id)
    body["resource_type"] = change.resource_name
    body["resource_id"] = str(change.resource_id)
    return body
