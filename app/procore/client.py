"""The Procore REST client: one shared httpx.AsyncClient per process (Runtime.http).

Every call carries `Procore-Company-Id` (FACTS.md §4) and the service's User-Agent, is paced
by the shared rate budget, is classified (`answers.classify`), and is appended to the caller's
audit list (written with the outcome it led to, `calls.record_calls`). A 401 renews the token
once (single-flight, `tokens.TokenService.renew`) and retries; a short 429 wait is waited out.

`request(method, path, json=...)` is the same pipeline for any method (the Hooks API writes
with POST/PATCH/DELETE); a refused call (401 renewed, 429 waited) was not acted on by Procore,
so it is safe to send again whatever its method.

`get(..., shared=True)` is single-flight per (credential, company, path) within the process:
a caller joins an identical GET that is in flight but not yet sent (so its answer is at least
as new as anything the caller knows of), or waits for a sent one to end and then shares the
next. Concurrent jobs of a fan-out storm thus cost one call per resource.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from app import metrics
from app.models import CredentialKind
from app.procore import backoff
from app.procore.answers import Outcome, OutcomeKind, classify, rate_headers
from app.procore.budget import RateBudget, Ticket
from app.procore.calls import CallRecord, Purpose
from app.procore.tokens import AccessToken, CredentialRef, TokenService
from app.procore.transport import ACCEPT_ENCODING, AiohttpTransport
from app.settings import Settings

# Short 429 waits are waited out in the job at most this many times per call.
_MAX_RATE_LIMIT_RETRIES = 2


@dataclass(slots=True)
class _Flight:
    answer: asyncio.Future[Answer]
    sent: bool = False

    def mark_sent(self) -> None:
        self.sent = True


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    body: bytes = b""
    # When the request was sent: the answer shows Procore's state as of at least this time.
    sent_at: float = 0.0
    # Pagination (`Link`, `Total`, `Per-Page`) and rate headers; None when nothing answered.
    headers: httpx.Headers | None = None

    def json(self) -> Any:
        return orjson.loads(self.body)


class ProcoreClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        settings: Settings,
        tokens: TokenService,
        budget: RateBudget,
        rng: random.Random | None = None,
        wire: AiohttpTransport | None = None,
    ) -> None:
        self._http = http
        # With the process's wire (Runtime), calls skip httpx's client layers, which a Procore
        # call never uses (URL merging, cookies, redirects): a quarter of a call's CPU. The
        # client's own headers (User-Agent) go with every call either way.
        self._wire = wire
        self._headers = {name.lower(): value for name, value in http.headers.items()}
        self._headers["accept-encoding"] = ACCEPT_ENCODING
        self._settings = settings
        self.tokens = tokens
        self.budget = budget
        self._rng = rng or random.Random()
        self._base = settings.procore_api_base.rstrip("/")
        self._timeout = httpx.Timeout(settings.procore_timeout_seconds, connect=5.0)
        self._flights: dict[tuple[int, int, str], _Flight] = {}
        # Beyond a few dozen calls in flight, a process only queues inside httpx's pool.
        self._in_flight = asyncio.Semaphore(settings.procore_max_in_flight)

    async def get(
        self,
        path: str,
        *,
        credential: CredentialRef,
        company_id: int,
        calls: list[CallRecord],
        project_id: int | None = None,
        event_id: int | None = None,
        purpose: str = Purpose.FETCH,
        shared: bool = False,
    ) -> Answer:
        """GET `path` as `credential` in `company_id`. Expected failures are outcomes.

        With `shared`, the answer may be another caller's (then `calls` gets nothing)."""
        if not shared:
            return await self._call(
                "GET", path, None, credential, company_id, calls, project_id, event_id, purpose
            )
        key = (credential.id, company_id, path)
        while (flight := self._flights.get(key)) is not None:
            if flight.sent:
                # Already sent: it may predate what the caller knows. Share the next one.
                await asyncio.wait([flight.answer])
                continue
            await asyncio.wait([flight.answer])
            if not flight.answer.cancelled() and flight.answer.exception() is None:
                return flight.answer.result()
            # The caller that led it failed or was cancelled: lead the next one.
        flight = self._flights[key] = _Flight(asyncio.get_running_loop().create_future())
        try:
            answer = await self._call(
                "GET",
                path,
                None,
                credential,
                company_id,
                calls,
                project_id,
                event_id,
                purpose,
                flight,
            )
        except Exception as exc:
            flight.answer.set_exception(exc)
            flight.answer.exception()  # marked as seen: joiners lead a retry, nobody re-raises
            raise
        except BaseException:
            flight.answer.cancel()
            raise
        else:
            flight.answer.set_result(answer)
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
        return answer

    async def request(
        self,
        method: str,
        path: str,
        *,
        credential: CredentialRef,
        company_id: int | None,
        calls: list[CallRecord],
        json: Any = None,
        project_id: int | None = None,
        purpose: str = Purpose.HOOKS,
    ) -> Answer:
        """Any method on `path` as `credential` in `company_id`, with an optional JSON body;
        paced, renewed on 401 and audited exactly like `get`. Without a company (install
        discovery's `/companies`), no `Procore-Company-Id` is sent."""
        return await self._call(
            method.upper(), path, json, credential, company_id, calls, project_id, None, purpose
        )

    async def _call(
        self,
        method: str,
        path: str,
        json: Any,
        credential: CredentialRef,
        company_id: int | None,
        calls: list[CallRecord],
        project_id: int | None,
        event_id: int | None,
        purpose: str,
        flight: _Flight | None = None,
    ) -> Answer:
        token = await self.tokens.access_token(credential)
        if isinstance(token, Outcome):
            return Answer(token)
        budget_key = self.budget.key(
            credential.id,
            company_id if credential.kind is CredentialKind.CLIENT_CREDENTIALS else None,
        )
        renewed = False
        rate_limited = 0
        while True:
            ticket = await self._pace(budget_key)
            if isinstance(ticket, Outcome):
                return Answer(ticket)
            answer = await self._send(
                path,
                token=token,
                ticket=ticket,
                method=method,
                json=json,
                audit=CallRecord(
                    purpose=purpose,
                    method=method,
                    path=path,
                    status=None,
                    latency_ms=0,
                    credential_id=credential.id,
                    company_id=company_id,
                    project_id=project_id,
                    event_id=event_id,
                ),
                calls=calls,
                flight=flight,
            )
            kind = answer.outcome.kind
            if kind is OutcomeKind.UNAUTHORIZED and not renewed:
                renewed = True
                fresh = await self.tokens.renew(credential, rejected=token.value)
                if isinstance(fresh, Outcome):
                    return answer
                token = fresh
                continue
            if kind is OutcomeKind.RATE_LIMITED and rate_limited < _MAX_RATE_LIMIT_RETRIES:
                wait = self._rate_limit_wait(answer.outcome)
                if wait <= self._settings.rate_limit_max_wait_seconds:
                    rate_limited += 1
                    await asyncio.sleep(wait)
                    continue
            return answer

    async def get_as(
        self,
        path: str,
        *,
        token: str,
        company_id: int | None,
        calls: list[CallRecord],
        credential_id: int | None = None,
        purpose: str = Purpose.CONNECT,
    ) -> Answer:
        """GET with a token in hand (the connect flow, before the credential is stored)."""
        return await self._send(
            path,
            token=AccessToken(token, 0.0, 0.0),
            ticket=None,
            audit=CallRecord(
                purpose=purpose,
                method="GET",
                path=path,
                status=None,
                latency_ms=0,
                credential_id=credential_id,
                company_id=company_id,
            ),
            calls=calls,
        )

    async def _pace(self, key: str) -> Ticket | Outcome:
        """Wait (briefly) for a unit of the shared budget; a long wait defers the call."""
        deadline = time.monotonic() + self._settings.rate_limit_max_wait_seconds
        while True:
            ticket, wait = await self.budget.take(key)
            if ticket is not None:
                return ticket
            if time.monotonic() + wait > deadline:
                return Outcome(
                    OutcomeKind.RATE_LIMITED,
                    None,
                    "deferred: the shared rate budget is spent until the limit resets",
                    rate_reset=time.time() + wait,
                )
            await asyncio.sleep(wait + self._rng.uniform(0.0, min(0.25, wait / 4)))

    def _rate_limit_wait(self, outcome: Outcome) -> float:
        jitter = min(0.25, self._settings.rate_limit_jitter_seconds)
        return backoff.rate_limit_wait(outcome, now=time.time(), jitter=jitter, rng=self._rng)

    async def _send(
        self,
        path: str,
        *,
        token: AccessToken,
        ticket: Ticket | None,
        audit: CallRecord,
        calls: list[CallRecord],
        flight: _Flight | None = None,
        method: str = "GET",
        json: Any = None,
    ) -> Answer:
        headers = {"authorization": f"Bearer {token.value}", "accept": "application/json"}
        if json is not None:
            headers["content-type"] = "application/json"
        if audit.company_id is not None:
            headers["procore-company-id"] = str(audit.company_id)
        status: int | None = None
        error: str | None = None
        answer_headers: httpx.Headers | None = None
        try:
            async with self._in_flight:
                if flight is not None:
                    flight.mark_sent()
                sent_at = time.time()
                started = time.perf_counter()
                content = None if json is None else orjson.dumps(json)
                if self._wire is not None:
                    exchange = await self._wire.exchange(
                        method,
                        self._base + path,
                        headers=[*{**self._headers, **headers}.items()],
                        content=content,
                        limits=self._timeout,
                    )
                    status, body, answer_headers = exchange.status, exchange.body, exchange.headers
                else:
                    response = await self._http.request(
                        method,
                        self._base + path,
                        headers=headers,
                        timeout=self._timeout,
                        content=content,
                    )
                    status, body = response.status_code, response.content
                    answer_headers = response.headers
        except httpx.TimeoutException:
            error = "timeout"
            body = error.encode()
        except httpx.TransportError as exc:
            error = f"connection error: {type(exc).__name__}"
            body = error.encode()
        finally:
            if ticket is not None:
                rate = rate_headers(answer_headers) if answer_headers is not None else None
                self.budget.settle(ticket, rate)
        latency_ms = round((time.perf_counter() - started) * 1000)
        metrics.procore_call(status, audit.purpose)
        calls.append(
            CallRecord(
                purpose=audit.purpose,
                method=audit.method,
                path=audit.path,
                status=status,
                latency_ms=latency_ms,
                credential_id=audit.credential_id,
                company_id=audit.company_id,
                project_id=audit.project_id,
                event_id=audit.event_id,
                error=error,
            )
        )
        outcome = classify(status, answer_headers if answer_headers is not None else {}, body)
        return Answer(outcome, body if status is not None else b"", sent_at, answer_headers)
