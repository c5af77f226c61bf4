"""What a company's hooks should look like, and the changes that get them there. Pure.

Ours are the hooks in our namespace; everything else is never touched. Of ours, one is kept
(the one already delivering to our URL if any, active first, oldest first) and the rest are
deleted. The kept hook is patched when its destination, its `Authorization` or its payload
version differ, and re-enabled when Procore has disabled it (after repeated failures). Its
triggers are made exactly the configured resources by event types.

Procore may not show `destination_headers` back. Then the `Authorization` last applied is
known only by its fingerprint (stored by the service): a different fingerprint, or none,
means the header must be set again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("create", "update", "delete")
DISABLED = "disabled"
ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Trigger:
    resource_name: str
    event_type: str
    id: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.resource_name, self.event_type)


@dataclass(frozen=True, slots=True)
class HookState:
    """A hook as Procore lists it, with its triggers."""

    id: int
    namespace: str
    destination_url: str
    api_version: str
    status: str = ACTIVE
    # None: Procore did not show them.
    destination_headers: dict[str, str] | None = None
    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True, slots=True)
class DesiredHook:
    namespace: str
    destination_url: str
    authorization: str = field(repr=False)
    api_version: str
    triggers: frozenset[tuple[str, str]]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization}

    def body(self) -> dict[str, Any]:
        return {
            "api_version": self.api_version,
            "namespace": self.namespace,
            "destination_url": self.destination_url,
            "destination_headers": self.headers,
        }


def desired_hook(
    *,
    namespace: str,
    public_base_url: str,
    authorization: str,
    resources: Iterable[str],
    api_version: str = "v2.0",
) -> DesiredHook:
    return DesiredHook(
        namespace=namespace,
        destination_url=public_base_url.rstrip("/") + "/webhooks/procore",
        authorization=authorization,
        api_version=api_version,
        triggers=frozenset((r, e) for r in resources for e in EVENT_TYPES),
    )


def fingerprint(authorization: str) -> str:
    return hashlib.sha256(authorization.encode()).hexdigest()


# --- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateHook:
    """Create the hook; the AddTriggers that follow (hook_id None) are for it."""


@dataclass(frozen=True, slots=True)
class UpdateHook:
    hook_id: int
    fields: dict[str, Any]
    reenable: bool = False


@dataclass(frozen=True, slots=True)
class DeleteHook:
    hook_id: int


@dataclass(frozen=True, slots=True)
class AddTrigger:
    hook_id: int | None
    resource_name: str
    event_type: str


@dataclass(frozen=True, slots=True)
class RemoveTrigger:
    hook_id: int
    trigger_id: int


Change = CreateHook | UpdateHook | DeleteHook | AddTrigger | RemoveTrigger


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    # The hook that stays (None: one is created).
    kept: int | None

    @property
    def reenables(self) -> int:
        return sum(1 for c in self.changes if isinstance(c, UpdateHook) and c.reenable)


def plan(desired: DesiredHook, current: Sequence[HookState], applied: str | None = None) -> Plan:
    """The changes from `current` (every hook listed for the company) to `desired`.

    `applied` is the fingerprint of the Authorization value we last set, if known."""
    ours = [h for h in current if h.namespace == desired.namespace]
    if not ours:
        adds = [AddTrigger(None, r, e) for r, e in sorted(desired.triggers)]
        return Plan((CreateHook(), *adds), None)
    keep = min(
        ours,
        key=lambda h: (h.destination_url != desired.destination_url, h.status != ACTIVE, h.id),
    )
    changes: list[Change] = [DeleteHook(h.id) for h in ours if h.id != keep.id]
    update = _hook_fields(desired, keep, applied)
    if update or keep.status == DISABLED:
        if keep.status == DISABLED:
            update["status"] = ACTIVE
        changes.append(UpdateHook(keep.id, update, reenable=keep.status == DISABLED))
    changes += _trigger_changes(desired, keep)
    return Plan(tuple(changes), keep.id)


def _hook_fields(desired: DesiredHook, hook: HookState, applied: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if hook.destination_url != desired.destination_url:
        fields["destination_url"] = desired.destination_url
    if hook.api_version != desired.api_version:
        fields["api_version"] = desired.api_version
    shown = hook.destination_headers
    if shown is not None and "Authorization" in shown:
        stale = shown != desired.headers
    else:
        stale = applied != fingerprint(desired.authorization)
    if stale:
        fields["destination_headers"] = desired.headers
    return fields


def _trigger_changes(desired: DesiredHook, hook: HookState) -> list[Change]:
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for trigger in sorted(hook.triggers, key=lambda t: (t.key, t.id or 0)):
        if trigger.key in desired.triggers and trigger.key not in seen:
            seen.add(trigger.key)
        elif trigger.id is not None:
            changes.append(RemoveTrigger(hook.id, trigger.id))
    changes += [AddTrigger(hook.id, r, e) for r, e in sorted(desired.triggers - seen)]
    return changes
