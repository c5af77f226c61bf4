"""The v1.0 Webhooks API (FACTS.md §2) over the shared Procore client: paced by the rate
budget, token renewed on 401, every call audited with purpose `hooks`.

Expected failures come back as the client's `Outcome`s (`Failed`), never as exceptions.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord, Purpose
from app.procore.client import Answer, ProcoreClient
from app.procore.tokens import CredentialRef
from app.resync.plan import has_next_page
from app.subscriptions.plan import ACTIVE, HookState, Trigger

HOOKS_PATH = "/rest/v1.0/webhooks/hooks"
_RATE_WAIT_CAP_SECONDS = 30.0
_BACKOFF_CAP_SECONDS = 30.0
_rng = random.Random()
# Pages of hooks or triggers a company could have before we stop reading (a safety bound).
_MAX_PAGES = 50
_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class Failed:
    """A call that did not succeed: what it was and what Procore answered."""

    what: str
    outcome: Outcome


class HooksApi:
    def __init__(
        self,
        client: ProcoreClient,
        credential: CredentialRef,
        company_id: int,
        calls: list[CallRecord],
    ) -> None:
        self._client = client
        self._credential = credential
        self._company_id = company_id
        self.calls = calls

    async def hooks(self, namespace: str) -> list[HookState] | Failed:
        """Our namespace's hooks with their triggers (filtered here too: a server that ignores
        the `namespace` parameter must not make us touch someone else's hook)."""
        listed = await self._list(
            HOOKS_PATH, {"company_id": self._company_id, "namespace": namespace}
        )
        if isinstance(listed, Failed):
            return listed
        found: list[HookState] = []
        for item in listed:
            if not isinstance(item, dict) or item.get("namespace") != namespace:
                continue
            triggers = await self._list(
                f"{HOOKS_PATH}/{int(item['id'])}/triggers", {"company_id": self._company_id}
            )
            if isinstance(triggers, Failed):
                return triggers
            found.append(_hook_state(item, triggers))
        return found

    async def create_hook(self, body: dict[str, Any]) -> int | Failed:
        answer = await self._send(
            "POST", HOOKS_PATH, {"company_id": self._company_id, "hook": body}
        )
        if isinstance(answer, Failed):
            return answer
        try:
            return int(answer.json()["id"])
        except (ValueError, KeyError, TypeError):
            return Failed("POST hook", Outcome(OutcomeKind.REJECTED, 201, "no hook id in answer"))

    async def update_hook(self, hook_id: int, fields: dict[str, Any]) -> Failed | None:
        answer = await self._send(
            "PATCH",
            f"{HOOKS_PATH}/{hook_id}?company_id={self._company_id}",
            {"company_id": self._company_id, "hook": fields},
        )
        return answer if isinstance(answer, Failed) else None

    async def delete_hook(self, hook_id: int) -> Failed | None:
        answer = await self._send(
            "DELETE", f"{HOOKS_PATH}/{hook_id}?company_id={self._company_id}", None
        )
        return answer if isinstance(answer, Failed) else None

    async def add_trigger(self, hook_id: int, resource_name: str, event_type: str) -> Failed | None:
        answer = await self._send(
            "POST",
            f"{HOOKS_PATH}/{hook_id}/triggers?company_id={self._company_id}",
            {
                "company_id": self._company_id,
                "trigger": {"resource_name": resource_name, "event_type": event_type},
            },
        )
        return answer if isinstance(answer, Failed) else None

    async def remove_trigger(self, hook_id: int, trigger_id: int) -> Failed | None:
        answer = await self._send(
            "DELETE",
            f"{HOOKS_PATH}/{hook_id}/triggers/{trigger_id}?company_id={self._company_id}",
            None,
        )
        return answer if isinstance(answer, Failed) else None

    async def _list(self, path: str, params: dict[str, Any]) -> list[Any] | Failed:
        items: list[Any] = []
        for page in range(1, _MAX_PAGES + 1):
            query = urlencode({**params, "page": page, "per_page": _PER_PAGE})
            answer = await self._send("GET", f"{path}?{query}", None)
            if isinstance(answer, Failed):
                return answer
            batch = answer.json()
            if not isinstance(batch, list):
                return Failed(path, Outcome(OutcomeKind.REJECTED, 200, "not a list"))
            items += batch
            if not has_next_page(answer.headers, page, _PER_PAGE, len(batch)):
                break
        return items

    async def _send(self, method: str, path: str, body: Any) -> Answer | Failed:
        answer = await patient_request(
            self._client,
            method,
            path,
            credential=self._credential,
            company_id=self._company_id,
            calls=self.calls,
            json=body,
            purpose=Purpose.HOOKS,
        )
        if answer.outcome.kind is not OutcomeKind.OK:
            return Failed(f"{method} {path.split('?', 1)[0]}", answer.outcome)
        return answer


async def patient_request(
    client: ProcoreClient,
    method: str,
    path: str,
    *,
    credential: CredentialRef,
    company_id: int,
    calls: list[CallRecord],
    json: Any = None,
    project_id: int | None = None,
    purpose: str,
    waits: list[float] | None = None,
    transient_attempts: int = 4,
) -> Answer:
    """A call that waits out the rate limit (a 429, or the shared budget spent) and retries
    transient failures with full-jitter backoff: upkeep jobs have time, and giving up would
    only make them start over later."""
    transient = 0
    while True:
        answer = await client.request(
            method,
            path,
            credential=credential,
            company_id=company_id,
            calls=calls,
            json=json,
            project_id=project_id,
            purpose=purpose,
        )
        outcome = answer.outcome
        if outcome.kind is OutcomeKind.RATE_LIMITED:
            wait = rate_limit_wait(outcome)
            if waits is not None:
                waits.append(wait)
            await asyncio.sleep(wait)
            continue
        if outcome.kind is OutcomeKind.TRANSIENT and transient + 1 < transient_attempts:
            transient += 1
            await asyncio.sleep(_rng.uniform(0, min(_BACKOFF_CAP_SECONDS, 2.0**transient)))
            continue
        return answer


def rate_limit_wait(outcome: Outcome) -> float:
    """Until the later of Retry-After and the limit's reset (FACTS.md §5), bounded, jittered."""
    waits = [1.0 if outcome.retry_after is None else outcome.retry_after]
    if outcome.rate_reset is not None:
        waits.append(outcome.rate_reset - time.time())
    return min(_RATE_WAIT_CAP_SECONDS, max(0.05, max(waits))) + _rng.uniform(0, 0.25)


def _hook_state(item: dict[str, Any], triggers: list[Any]) -> HookState:
    headers = item.get("destination_headers")
    return HookState(
        id=int(item["id"]),
        namespace=str(item.get("namespace")),
        destination_url=str(item.get("destination_url") or ""),
        api_version=str(item.get("api_version") or ""),
        status=str(item.get("status") or ACTIVE),
        destination_headers=(
            {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None
        ),
        triggers=tuple(
            Trigger(str(t["resource_name"]), str(t["event_type"]), int(t["id"]))
            for t in triggers
            if isinstance(t, dict) and "id" in t
        ),
    )
