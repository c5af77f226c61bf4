"""The hooks and triggers created through the simulated Webhooks API (FACTS.md §9). Pure.

Each hook belongs to one company (or project), lives in a namespace, and delivers through the
webhook sender (`sender_hook_id`) only the changes its triggers name. The registry counts the
writes made to it (POST/PATCH/DELETE), so a test can assert that a second sync wrote nothing,
and holds the Webhooks API's behaviour settings.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Procore's ids are large; starting here keeps API hook ids apart from `/_sim/hooks` ids.
FIRST_HOOK_ID = 70_000
FIRST_TRIGGER_ID = 800_000
# `plan_your_app/webhooks_api.md`: "Allowed characters: lowercase a-z, digits 0-9, and dashes".
NAMESPACE = re.compile(r"^[a-z0-9-]+$")
# "masked to only show the last 5 characters".
MASK_KEPT = 5


def mask(value: str) -> str:
    return "*****" + value[-MASK_KEPT:]


@dataclass(slots=True)
class ApiTrigger:
    id: int
    hook_id: int
    resource_name: str
    event_type: str
    company_id: int | None
    project_id: int | None
    user_id: int | None

    def view(self, *, upper: bool) -> dict[str, Any]:
        """The v1.0 trigger object (OpenAPI `WebhooksTrigger`): `event_type` in the answer's
        enum case (`CREATE|UPDATE|DELETE`) unless told otherwise."""
        return {
            "id": self.id,
            "webhook_hook_id": self.hook_id,
            "resource_name": self.resource_name,
            "resource_id": None,
            "event_type": self.event_type.upper() if upper else self.event_type,
            "company_id": self.company_id,
            "project_id": self.project_id,
            "user_id": self.user_id,
        }


@dataclass(slots=True)
class ApiHook:
    id: int
    company_id: int | None
    project_id: int | None
    user_id: int | None
    namespace: str
    api_version: str
    destination_url: str
    destination_headers: dict[str, str]
    created_at: datetime
    sender_hook_id: int | None = None
    triggers: dict[int, ApiTrigger] = field(default_factory=dict)

    def wants(self, resource_name: str, event_type: str) -> bool:
        return any(
            t.resource_name == resource_name and t.event_type == event_type.lower()
            for t in self.triggers.values()
        )

    def masked_headers(self) -> dict[str, str]:
        return {
            k: (mask(v) if k.lower() == "authorization" else v)
            for k, v in self.destination_headers.items()
        }


@dataclass(slots=True)
class HookRegistry:
    hooks: dict[int, ApiHook] = field(default_factory=dict)
    # Writes by method ("POST", "PATCH", "DELETE"), for "nothing changed" checks.
    writes: Counter[str] = field(default_factory=Counter)
    # Set through `/_sim/webhooks/settings`; applied to hooks created afterwards.
    deactivate_after_failures: int | None = None
    time_scale: float = 1.0
    # (resource_name, event_type) pairs the API refuses with 422, as Procore may.
    refused_triggers: set[tuple[str, str]] = field(default_factory=set)
    _next_hook: int = FIRST_HOOK_ID
    _next_trigger: int = FIRST_TRIGGER_ID

    def next_hook_id(self) -> int:
        self._next_hook += 1
        return self._next_hook

    def next_trigger_id(self) -> int:
        self._next_trigger += 1
        return self._next_trigger

    def of_company(self, company_id: int, namespace: str | None = None) -> list[ApiHook]:
        return sorted(
            (
                h
                for h in self.hooks.values()
                if h.company_id == company_id and (namespace is None or h.namespace == namespace)
            ),
            key=lambda h: h.id,
        )

    def count_write(self, method: str) -> None:
        self.writes[method] += 1
        self.writes["total"] += 1
