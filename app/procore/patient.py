"""Patient calls, for background upkeep (hooks sync, resync, install discovery) that has
time: a 429 or a spent shared budget is waited out, whatever it takes; a transient failure
(5xx, timeout, connection error) is tried again after a full-jitter backoff, a few times.
Giving up would only make the upkeep start over later. Webhook processing is not patient:
it hands a long wait back to the scheduler (app.events.policy) instead of holding its job.

Also here: listing every page of a list call (app.procore.pages).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from app.procore import backoff
from app.procore.answers import Outcome, OutcomeKind
from app.procore.calls import CallRecord
from app.procore.client import Answer, ProcoreClient
from app.procore.pages import has_next_page
from app.procore.tokens import CredentialRef

_RATE_WAIT_CAP_SECONDS = 30.0
_RATE_WAIT_FLOOR_SECONDS = 0.05
_RATE_WAIT_JITTER_SECONDS = 0.25
_BACKOFF_BASE_SECONDS = 2.0
_BACKOFF_CAP_SECONDS = 30.0
# Pages of one list read before stopping (a safety bound).
MAX_PAGES = 100_000
_rng = random.Random()


@dataclass(frozen=True, slots=True)
class Failed:
    """A call that did not succeed: what it was and what Procore answered."""

    what: str
    outcome: Outcome

    @property
    def text(self) -> str:
        return f"{self.what}: {self.outcome.status} {self.outcome.message}"


async def request(
    client: ProcoreClient,
    method: str,
    path: str,
    *,
    credential: CredentialRef,
    company_id: int | None,
    calls: list[CallRecord],
    purpose: str,
    json: Any = None,
    project_id: int | None = None,
    waits: list[float] | None = None,
    transient_attempts: int = 4,
) -> Answer:
    """`client.request`, patiently (see the module's docstring)."""
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
            wait = backoff.rate_limit_wait(
                outcome,
                now=time.time(),
                jitter=_RATE_WAIT_JITTER_SECONDS,
                rng=_rng,
                cap=_RATE_WAIT_CAP_SECONDS,
            )
            if waits is not None:
                waits.append(wait)
            await asyncio.sleep(max(_RATE_WAIT_FLOOR_SECONDS, wait))
            continue
        if outcome.kind is OutcomeKind.TRANSIENT and transient + 1 < transient_attempts:
            transient += 1
            await asyncio.sleep(
                backoff.full_jitter(transient, _BACKOFF_BASE_SECONDS, _BACKOFF_CAP_SECONDS, _rng)
            )
            continue
        return answer


async def list_all(
    client: ProcoreClient,
    credential: CredentialRef,
    company_id: int | None,
    path: str,
    calls: list[CallRecord],
    *,
    per_page: int,
    purpose: str,
    transient_attempts: int = 4,
) -> list[Any] | Failed:
    """Every page of a list call."""
    items: list[Any] = []
    joiner = "&" if "?" in path else "?"
    for page in range(1, MAX_PAGES):
        answer = await request(
            client,
            "GET",
            f"{path}{joiner}page={page}&per_page={per_page}",
            credential=credential,
            company_id=company_id,
            calls=calls,
            purpose=purpose,
            transient_attempts=transient_attempts,
        )
        if answer.outcome.kind is not OutcomeKind.OK:
            return Failed(f"GET {path}", answer.outcome)
        batch = answer.json()
        if not isinstance(batch, list):
            return Failed(f"GET {path}", Outcome(OutcomeKind.REJECTED, 200, "not a list"))
        items += batch
        if not has_next_page(answer.headers, page, per_page, len(batch)):
            break
    return items
