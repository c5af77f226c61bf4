"""One delivery attempt: check the destination's address again, connect to exactly that
address, POST the signed body, read at most a bounded part of the answer, and classify it.

- 2xx: delivered.
- 408, 429, 5xx, timeout, connection error, 3xx (redirects are never followed): failed,
  retried, counted towards parking.
- other 4xx: dead, the message is kept as a dead letter (replayable); the destination
  answered, so it is reachable.
- address not allowed (the name resolves elsewhere now): refused, nothing sent; a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from app.delivery import addresses, signing
from app.delivery.addresses import AddressRules, DestinationRefused, Resolver
from app.headers import retry_after_seconds

Outcome = Literal["delivered", "failed", "dead", "refused"]


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    status: int | None
    error: str | None
    latency_ms: int
    retry_after: float | None = None

    @property
    def answered(self) -> bool:
        """The destination answered deliberately (delivered or refused the message)."""
        return self.outcome in ("delivered", "dead")


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in (408, 429):
        return "dead"
    return "failed"


async def send(
    client: httpx.AsyncClient,
    url: str,
    *,
    message_id: str,
    body: bytes,
    secrets_in_use: Sequence[str],
    rules: AddressRules,
    timeout_s: float,
    max_answer_bytes: int,
    resolver: Resolver = addresses.system_resolver,
) -> Answer:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = addresses.parse(url, rules)
        [address, *_] = await addresses.checked_addresses(target, rules, resolver)
    except DestinationRefused as exc:
        return Answer("refused", None, f"refused: {exc}", elapsed())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        # Compressed answers could expand past the bound while being decoded: none are asked.
        "Accept-Encoding": "identity",
        **signing.headers(message_id, int(time.time()), body, secrets_in_use),
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with asyncio.timeout(timeout_s):
            request = client.build_request(
                "POST", target.url_for(address), content=body, headers=headers,
                extensions=extensions,
            )  # fmt: skip
            response = await client.send(request, stream=True)
            try:
                excerpt = await _read_bounded(response, max_answer_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        return Answer("failed", None, f"timeout after {timeout_s:g} s", elapsed())
    except httpx.HTTPError as exc:
        return Answer("failed", None, f"{type(exc).__name__}: {exc}"[:500], elapsed())
    status = response.status_code
    outcome = classify(status)
    error = None
    if outcome != "delivered":
        error = excerpt or None
        if 300 <= status < 400:
            location = response.headers.get("location", "")[:300]
            error = f"redirect to {location!r} not followed"
    return Answer(outcome, status, error, elapsed(), retry_after(response))


async def _read_bounded(response: httpx.Response, limit: int) -> str:
    """At most `limit` bytes of the answer (the rest is never read), as text."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk[: max(0, limit - size)])
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode("utf-8", "replace")


def retry_after(response: httpx.Response) -> float | None:
    """A 429's or 503's `Retry-After` (seconds or an HTTP date), if under a day."""
    if response.status_code not in (429, 503):
        return None
    seconds = retry_after_seconds(response.headers)
    return seconds if seconds is not None and seconds < 86400 else None
