"""Procore's Webhooks API (FACTS.md §9, `plan_your_app/webhooks_api.md`) over the shared
Procore client: paced by the rate budget, token renewed on 401, every call audited with
purpose `hooks`.

- Hooks, triggers, what can be subscribed and deliveries: the v1.0 API (hooks and trigger
  lists are not paginated; a trigger POST carries the hook's `api_version`).
- A hook's `status` (Procore disables hooks after repeated failed deliveries): only the
  v2.0 API shows it and can turn a hook back on.

Expected failures come back as `Failed` (what was asked, and Procore's answer as an
`Outcome`), never as exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from app.procore import paths, patient
from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord, Purpose
from app.procore.client import Answer, ProcoreClient
from app.procore.patient import Failed
from app.procore.tokens import CredentialRef
from app.registry.ids import id_of
from app.subscriptions.plan import HookState, Trigger, normal_event

# Pages of v2.0 hooks or of deliveries read before stopping (a safety bound).
_MAX_PAGES = 50
_PER_PAGE = 100
# Where a /webhooks/resources item names its resource, by preference.
_NAME_FIELDS = ("resource_name", "name", "tools")
# Triggers per bulk call (Procore: at most 500, else 413).
_BULK_MAX = 500


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

    # -- reading -----------------------------------------------------------------------------

    async def subscribable(self) -> dict[str, frozenset[str]] | Failed:
        """Resource name → the event types Procore allows (`except` removed)."""
        answer = await self._send(
            "GET", f"{paths.WEBHOOK_RESOURCES}?company_id={self._company_id}", None
        )
        if isinstance(answer, Failed):
            return answer
        listed = _json(answer)
        if not isinstance(listed, list):
            return Failed(
                f"GET {paths.WEBHOOK_RESOURCES}", Outcome(OutcomeKind.REJECTED, 200, "not a list")
            )
        allowed: dict[str, frozenset[str]] = {}
        for item in listed:
            if not isinstance(item, dict):
                continue
            # The OpenAPI example puts the name in `tools`; prefer an explicit name.
            name = next(
                (
                    item[k]
                    for k in ("resource_name", "name", "tools")
                    if isinstance(item.get(k), str)
                ),
                None,
            )
            if name is None:
                continue
            barred = item.get("except")
            refused = (
                {normal_event(e) for e in barred if isinstance(e, str)}
                if isinstance(barred, list)
                else set()
            )
            allowed[name] = frozenset({"create", "update", "delete"} - refused)
        return allowed

    async def hooks(self, namespace: str) -> list[HookState] | Failed:
        """Our namespace's hooks with their triggers and status (filtered here too: a server
        that ignores the `namespace` parameter must not make us touch someone else's)."""
        query = urlencode({"company_id": self._company_id, "namespace": namespace})
        answer = await self._send("GET", f"{paths.HOOKS}?{query}", None)
        if isinstance(answer, Failed):
            return answer
        listed = _json(answer)
        if not isinstance(listed, list):
            return Failed(f"GET {paths.HOOKS}", Outcome(OutcomeKind.REJECTED, 200, "not a list"))
        ours = [i for i in listed if isinstance(i, dict) and i.get("namespace") == namespace]
        statuses = await self.statuses(namespace) if ours else {}
        found: list[HookState] = []
        for item in ours:
            hook_id = int(item["id"])
            answer = await self._send(
                "GET", f"{paths.triggers(hook_id)}?company_id={self._company_id}", None
            )
            if isinstance(answer, Failed):
                return answer
            triggers = _json(answer)
            found.append(
                _hook_state(item, triggers if isinstance(triggers, list) else [], statuses)
            )
        return found

    async def statuses(self, namespace: str) -> Mapping[int, str]:
        """Hook id → "active" | "disabled", from the v2.0 API; empty when it cannot say
        (the status is then unknown, never assumed active)."""
        path = paths.v2_hooks(self._company_id)
        found: dict[int, str] = {}
        for page in range(1, _MAX_PAGES + 1):
            query = urlencode({"namespace": namespace, "page": page, "per_page": _PER_PAGE})
            answer = await self._send("GET", f"{path}?{query}", None)
            if isinstance(answer, Failed):
                return found
            body = _json(answer)
            items = body.get("data") if isinstance(body, dict) else None
            if not isinstance(items, list):
                return found
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("status"), str):
                    hook_id = id_of(item.get("id"))
                    if hook_id is not None:
                        found[hook_id] = item["status"]
            if len(items) < _PER_PAGE:
                break
        return found

    async def discarded(self, hook_id: int, *, max_pages: int = 10) -> list[Any] | Failed:
        """The events of deliveries Procore discarded (after 12 h of failure): changes the
        receiver never saw. Both spellings of the status filter are sent (the docs write
        `filter[status]`, the OpenAPI `filters[status]`); the outcome is checked here too."""
        found: list[Any] = []
        start: int | None = None
        for _ in range(max_pages):
            params: dict[str, Any] = {
                "company_id": self._company_id,
                "filter[status]": "discarded",
                "filters[status]": "discarded",
                "page_size": _PER_PAGE,
            }
            if start is not None:
                params["page_start"] = start
            path = paths.deliveries(hook_id)
            answer = await self._send("GET", f"{path}?{urlencode(params)}", None)
            if isinstance(answer, Failed):
                return answer
            page = _json(answer)
            if not isinstance(page, list):
                return Failed(f"GET {path}", Outcome(OutcomeKind.REJECTED, 200, "not a list"))
            found += [
                d["event"]
                for d in page
                if isinstance(d, dict)
                and d.get("outcome") == "discarded"
                and isinstance(d.get("event"), dict)
            ]
            last = id_of(page[-1].get("event_id")) if page and isinstance(page[-1], dict) else None
            if len(page) < _PER_PAGE or last is None or last == start:
                break
            start = last
        return found

    # -- writing -----------------------------------------------------------------------------

    async def create_hook(self, body: dict[str, Any]) -> int | Failed:
        answer = await self._send(
            "POST", paths.HOOKS, {"company_id": self._company_id, "hook": body}
        )
        if isinstance(answer, Failed):
            return answer
        created = _json(answer)
        hook_id = id_of(created.get("id")) if isinstance(created, dict) else None
        if hook_id is None:
            return Failed("POST hook", Outcome(OutcomeKind.REJECTED, 201, "no hook id in answer"))
        return hook_id

    async def update_hook(self, hook_id: int, fields: dict[str, Any]) -> Failed | None:
        answer = await self._send(
            "PATCH",
            f"{paths.hook(hook_id)}?company_id={self._company_id}",
            {"company_id": self._company_id, "hook": fields},
        )
        return answer if isinstance(answer, Failed) else None

    async def reenable(self, hook_id: int) -> Failed | None:
        answer = await self._send(
            "PATCH", f"{paths.v2_hooks(self._company_id)}/{hook_id}", {"status": "active"}
        )
        return answer if isinstance(answer, Failed) else None

    async def delete_hook(self, hook_id: int) -> Failed | None:
        answer = await self._send(
            "DELETE", f"{paths.hook(hook_id)}?company_id={self._company_id}", None
        )
        return answer if isinstance(answer, Failed) else None

    async def add_trigger(
        self, hook_id: int, resource_name: str, event_type: str, api_version: str
    ) -> int | Failed:
        answer = await self._send(
            "POST",
            paths.triggers(hook_id),
            {
                "company_id": self._company_id,
                # "Body must include api_version and a trigger object" (webhooks_api.md).
                "api_version": api_version,
                "trigger": {"resource_name": resource_name, "event_type": event_type},
            },
        )
        if isinstance(answer, Failed):
            return answer
        created = _json(answer)
        return (id_of(created.get("id")) if isinstance(created, dict) else None) or 0

    async def add_triggers(
        self, hook_id: int, wanted: Sequence[tuple[str, str]], api_version: str
    ) -> dict[tuple[str, str], int | Failed]:
        """Many triggers in one call each of up to 500 (`…/triggers/bulk`, OpenAPI
        `RestV10WebhooksHooksHookIdTriggersBulkPost`): Procore answers per trigger (207:
        `success` and `failed`), so each stands or falls alone. A server without the bulk
        form (404/405) gets them one by one."""
        results: dict[tuple[str, str], int | Failed] = {}
        for start in range(0, len(wanted), _BULK_MAX):
            chunk = wanted[start : start + _BULK_MAX]
            answer = await self._send(
                "POST",
                f"{paths.triggers(hook_id)}/bulk",
                {
                    "company_id": self._company_id,
                    "api_version": api_version,
                    "triggers": [{"resource_name": r, "event_type": e} for r, e in chunk],
                },
            )
            if isinstance(answer, Failed) and answer.outcome.status in (404, 405):
                for key in chunk:
                    results[key] = await self.add_trigger(hook_id, *key, api_version)
                continue
            if isinstance(answer, Failed):
                results.update(dict.fromkeys(chunk, answer))
                continue
            results.update(_bulk_results(chunk, _json(answer), answer.outcome.status))
        return results

    async def remove_trigger(self, hook_id: int, trigger_id: int) -> Failed | None:
        answer = await self._send(
            "DELETE",
            f"{paths.triggers(hook_id)}/{trigger_id}?company_id={self._company_id}",
            None,
        )
        return answer if isinstance(answer, Failed) else None

    async def _send(self, method: str, path: str, body: Any) -> Answer | Failed:
        answer = await patient.request(
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


def _bulk_results(
    chunk: Sequence[tuple[str, str]], body: Any, status: int | None
) -> dict[tuple[str, str], int | Failed]:
    """Map a bulk answer back to its triggers; one the answer does not name is refused."""
    results: dict[tuple[str, str], int | Failed] = {}
    if isinstance(body, dict):
        for item in body.get("success") or []:
            if isinstance(item, dict) and isinstance(item.get("resource_name"), str):
                key = (item["resource_name"], normal_event(str(item.get("event_type", ""))))
                results[key] = id_of(item.get("id")) or 0
        for item in body.get("failed") or []:
            if not isinstance(item, dict):
                continue
            named = item.get("trigger")
            trigger: dict[str, Any] = named if isinstance(named, dict) else {}
            name, event = trigger.get("resource_name"), trigger.get("event_type")
            message = (
                "; ".join(str(x) for x in (item.get("message"), item.get("errors")) if x)
                or "refused"
            )
            code = id_of(item.get("code")) or 422
            failed = Failed("POST trigger", Outcome(OutcomeKind.REJECTED, code, message[:500]))
            for key in chunk:
                if key[0] == name and (event is None or normal_event(str(event)) == key[1]):
                    results.setdefault(key, failed)
    missing = Failed(
        "POST triggers/bulk", Outcome(OutcomeKind.REJECTED, status, "not in the bulk answer")
    )
    return {key: results.get(key, missing) for key in chunk}


def _json(answer: Answer) -> Any:
    try:
        return answer.json() if answer.body else None
    except ValueError:
        return None


def _hook_state(
    item: dict[str, Any], triggers: list[Any], statuses: Mapping[int, str]
) -> HookState:
    headers = item.get("destination_headers")
    hook_id = int(item["id"])
    return HookState(
        id=hook_id,
        namespace=str(item.get("namespace")),
        destination_url=str(item.get("destination_url") or ""),
        api_version=str(item.get("api_version") or ""),
        status=statuses.get(hook_id)
        or (item["status"] if isinstance(item.get("status"), str) else None),
        destination_headers=(
            {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None
        ),
        triggers=tuple(
            Trigger(str(t["resource_name"]), str(t["event_type"]), id_of(t.get("id")))
            for t in triggers
            if isinstance(t, dict) and id_of(t.get("id")) is not None and "resource_name" in t
        ),
    )
