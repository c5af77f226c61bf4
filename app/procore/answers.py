"""What a Procore answer means: `classify(status, headers, body) -> Outcome`. Pure, no I/O.

The table (DESIGN.md "Classification", FACTS.md §5-6): status first, then the body text.

| answer                                  | kind           |
|-----------------------------------------|----------------|
| 2xx                                     | OK             |
| 401                                     | UNAUTHORIZED   |
| 403 "not connected to this company"     | NOT_INSTALLED  |
| 403 other                               | FORBIDDEN      |
| 404                                     | NOT_FOUND      |
| 409, 422, other 4xx                     | REJECTED       |
| 429; 503 with Retry-After               | RATE_LIMITED   |
| 5xx, timeout, connection error          | TRANSIENT      |

Procore's error bodies vary by endpoint (`{"errors": [...]}`, `{"errors": "..."}`,
`{"error": {"code", "message", "details"}}`, `{"code", "message", "reason", "error"}`, OAuth's
`{"error", "error_description"}`, plain text): `message_of` flattens any of them to one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from app.headers import header, number, retry_after_seconds

EXCERPT_CHARS = 500

# Procore's text for an app that is not installed (or was uninstalled) in the company.
_NOT_CONNECTED = re.compile(r"not\s+connected\s+to\s+(this|the)\s+company", re.IGNORECASE)


class OutcomeKind(StrEnum):
    OK = "ok"
    UNAUTHORIZED = "unauthorized"
    NOT_INSTALLED = "not_installed"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"


# The outcomes that are signals for the gates (DESIGN.md "Gates").
GATE_SIGNALS = frozenset(
    {OutcomeKind.UNAUTHORIZED, OutcomeKind.NOT_INSTALLED, OutcomeKind.FORBIDDEN}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    # None: no answer at all (timeout, connection error) or not a call (a deferred call).
    status: int | None
    # One line saying why, from the body or the error; never holds a token.
    message: str = ""
    # Seconds from `Retry-After`; unix seconds from `X-Rate-Limit-Reset`.
    retry_after: float | None = None
    rate_reset: float | None = None

    @property
    def is_gate_signal(self) -> bool:
        return self.kind in GATE_SIGNALS


def classify(status: int | None, headers: Mapping[str, str], body: bytes | str) -> Outcome:
    """Classify one answer. `status` None means no answer; `body` then holds the error text."""
    if status is not None and 200 <= status < 300:
        return Outcome(OutcomeKind.OK, status)  # the body is the caller's to read
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    message = message_of(text)
    if status is None:
        return Outcome(OutcomeKind.TRANSIENT, None, message or "no answer")
    retry_after = retry_after_seconds(headers)
    reset = number(header(headers, "x-rate-limit-reset"))
    if status == 429 or (status == 503 and retry_after is not None):
        return Outcome(OutcomeKind.RATE_LIMITED, status, message, retry_after, reset)
    if status == 401:
        return Outcome(OutcomeKind.UNAUTHORIZED, status, message)
    if status == 403:
        if _NOT_CONNECTED.search(text):
            return Outcome(OutcomeKind.NOT_INSTALLED, status, message)
        return Outcome(OutcomeKind.FORBIDDEN, status, message)
    if status == 404:
        return Outcome(OutcomeKind.NOT_FOUND, status, message)
    if 400 <= status < 500:
        return Outcome(OutcomeKind.REJECTED, status, message)
    if status >= 500:
        return Outcome(OutcomeKind.TRANSIENT, status, message, retry_after)
    # 1xx/3xx: nothing we asked for (redirects are not followed): our request is wrong.
    return Outcome(OutcomeKind.REJECTED, status, message or f"unexpected status {status}")


def message_of(text: str) -> str:
    """One line of at most EXCERPT_CHARS from any of Procore's error body shapes."""
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        parsed: Any = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return _excerpt(stripped)
    parts = _messages(parsed)
    return _excerpt("; ".join(parts) if parts else stripped)


def _messages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    if not isinstance(value, dict):
        return [] if value is None else [str(value)]
    out: list[str] = []
    # `error` first: it is either the OAuth code or a nested {code, message, details}.
    for key in ("error", "code", "message", "reason", "error_description", "errors", "details"):
        if key in value and value[key] not in (None, "", [], {}):
            out.extend(_messages(value[key]))
    if not out:
        # Validation errors are sometimes keyed by field: {"errors": {"subject": ["blank"]}}.
        out = [f"{k}: {', '.join(_messages(v))}" for k, v in value.items()]
    return _dedupe(out)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _excerpt(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= EXCERPT_CHARS:
        return one_line
    return one_line[: EXCERPT_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class RateHeaders:
    limit: int | None
    remaining: int | None
    reset: float | None


def rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    limit = number(header(headers, "x-rate-limit-limit"))
    remaining = number(header(headers, "x-rate-limit-remaining"))
    return RateHeaders(
        None if limit is None else int(limit),
        None if remaining is None else int(remaining),
        number(header(headers, "x-rate-limit-reset")),
    )
