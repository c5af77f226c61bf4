"""What a company's hook should look like, and the changes that get them there. Pure.

Ours are the hooks in our namespace; everything else is never touched. Of ours, one is kept
(the one already delivering to our URL if any, active first, oldest first) and the rest are
deleted. The kept hook is patched when its destination, its `Authorization` or its payload
version differ, and re-enabled when Procore has disabled it (after repeated failures). Its
triggers are made exactly the wanted (resource, event type) pairs that Procore allows.

How Procore shows a hook (FACTS.md §9, `plan_your_app/webhooks_api.md`):
- `destination_headers.Authorization` is masked to its last five characters: it matches
  ours when those five agree and the fingerprint of what we last wrote is ours.
- `api_version` is spelled `"v2"` as well as `"v2.0"`: the same version.
- A trigger's `event_type` comes back as `CREATE|UPDATE|DELETE` too: compared without case.
- The v1.0 hook has no `status`: only the v2.0 Webhooks API shows it (None: not known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.registry import resources

DISABLED = "disabled"
ACTIVE = "active"
# Masked listings keep this many trailing characters of the header.
MASK_KEPT = 5


def normal_version(value: str) -> str:
    """`v2` ≡ `v2.0` (and `V3` ≡ `v3.0`)."""
    text = value.strip().lower()
    return text if "." in text or not text.startswith("v") else f"{text}.0"


def normal_event(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True, slots=True)
class Trigger:
    resource_name: str
    event_type: str
    id: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.resource_name, normal_event(self.event_type))


@dataclass(frozen=True, slots=True)
class HookState:
    """A hook as Procore lists it, with its triggers."""

    id: int
    namespace: str
    destination_url: str
    api_version: str
    # "active" | "disabled" as the v2.0 Webhooks API shows it; None: not known.
    status: str | None = None
    # As listed (masked); None: not shown.
    destination_headers: dict[str, str] | None = None
    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True, slots=True)
class Excluded:
    """A wanted (resource, event type) the hook does not subscribe, and why."""

    resource_name: str
    event_type: str
    why: str


@dataclass(frozen=True, slots=True)
class DesiredHook:
    namespace: str
    destination_url: str
    authorization: str = field(repr=False)
    api_version: str
    triggers: frozenset[tuple[str, str]]
    excluded: tuple[Excluded, ...] = ()

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
    resources_wanted: Iterable[str],
    allowed: Mapping[str, frozenset[str]] | None,
    api_version: str = "v2.0",
    today: date | None = None,
) -> DesiredHook:
    """The hook for `resources_wanted`, each with the event types the registry subscribes,
    minus what Procore's `/webhooks/resources` does not allow (None: not known, all)."""
    triggers: set[tuple[str, str]] = set()
    excluded: list[Excluded] = []
    for name in resources_wanted:
        kind = resources.REGISTRY[name]
        for event_type in sorted(kind.subscribed_events(today)):
            if allowed is not None and name not in allowed:
                excluded.append(Excluded(name, event_type, "Procore lists no webhooks for it"))
            elif allowed is not None and event_type not in allowed[name]:
                excluded.append(
                    Excluded(name, event_type, "Procore lists it in `except` (not subscribable)")
                )
            else:
                triggers.add((name, event_type))
    return DesiredHook(
        namespace=namespace,
        destination_url=public_base_url.rstrip("/") + "/webhooks/procore",
        authorization=authorization,
        api_version=api_version,
        triggers=frozenset(triggers),
        excluded=tuple(excluded),
    )


def fingerprint(authorization: str) -> str:
    return hashlib.sha256(authorization.encode()).hexdigest()


def authorization_matches(shown: str | None, desired: str, applied: str | None) -> bool:
    """Whether the hook already carries `desired`: we wrote it (`applied` is its
    fingerprint), and what Procore shows, masked or not, agrees with it."""
    if applied != fingerprint(desired):
        return False
    if shown is None:
        return True
    if shown == desired:
        return True
    # Masked: "*****" and the last five characters.
    return shown.lstrip("*")[-MASK_KEPT:] == desired[-MASK_KEPT:] and shown.startswith("*")


# --- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateHook:
    """Create the hook; the AddTriggers that follow (hook_id None) are for it."""


@dataclass(frozen=True, slots=True)
class UpdateHook:
    hook_id: int
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reenable:
    """Turn a hook Procore disabled back on (only the v2.0 Webhooks API can)."""

    hook_id: int


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


Change = CreateHook | UpdateHook | Reenable | DeleteHook | AddTrigger | RemoveTrigger


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    # The hook that stays (None: one is created).
    kept: int | None
    # The kept hook's triggers that stay, by key.
    kept_triggers: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @property
    def reenables(self) -> int:
        return sum(1 for c in self.changes if isinstance(c, Reenable))


def plan(desired: DesiredHook, current: Sequence[HookState], applied: str | None = None) -> Plan:
    """The changes from `current` (every hook listed for the company) to `desired`.

    `applied` is the fingerprint of the Authorization value we last set, if known."""
    ours = [h for h in current if h.namespace == desired.namespace]
    if not ours:
        adds = [AddTrigger(None, r, e) for r, e in sorted(desired.triggers)]
        return Plan((CreateHook(), *adds), None)
    keep = min(
        ours,
        key=lambda h: (h.destination_url != desired.destination_url, h.status == DISABLED, h.id),
    )
    changes: list[Change] = [DeleteHook(h.id) for h in ours if h.id != keep.id]
    update = _hook_fields(desired, keep, applied)
    if update:
        changes.append(UpdateHook(keep.id, update))
    if keep.status == DISABLED:
        changes.append(Reenable(keep.id))
    trigger_changes, kept = _trigger_changes(desired, keep)
    changes += trigger_changes
    return Plan(tuple(changes), keep.id, kept)


def _hook_fields(desired: DesiredHook, hook: HookState, applied: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if hook.destination_url != desired.destination_url:
        fields["destination_url"] = desired.destination_url
    if normal_version(hook.api_version) != normal_version(desired.api_version):
        fields["api_version"] = desired.api_version
    shown = (hook.destination_headers or {}).get("Authorization")
    if not authorization_matches(shown, desired.authorization, applied):
        fields["destination_headers"] = desired.headers
    return fields


def _trigger_changes(
    desired: DesiredHook, hook: HookState
) -> tuple[list[Change], dict[tuple[str, str], int]]:
    changes: list[Change] = []
    kept: dict[tuple[str, str], int] = {}
    for trigger in sorted(hook.triggers, key=lambda t: (t.key, t.id or 0)):
        if trigger.key in desired.triggers and trigger.key not in kept and trigger.id is not None:
            kept[trigger.key] = trigger.id
        elif trigger.id is not None:
            changes.append(RemoveTrigger(hook.id, trigger.id))
    changes += [AddTrigger(hook.id, r, e) for r, e in sorted(desired.triggers - set(kept))]
    return changes, kept
