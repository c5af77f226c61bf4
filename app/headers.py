"""Headers of an HTTP answer that both outbound clients read (Procore's and the
destinations'): one reading of `Retry-After`."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """`name` (lower case) of `headers`: httpx.Headers, or a plain dict of any case."""
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        # Plain dicts (tests, stored answers) are case-sensitive; httpx.Headers is not.
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return value


def number(value: str | None) -> float | None:
    """A finite number, or None."""
    if value is None:
        return None
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if parsed == parsed and abs(parsed) != float("inf") else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (taken relative to its Date)."""
    value = header(headers, "retry-after")
    if value is None:
        return None
    seconds = number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = header(headers, "date")
    try:
        base = email.utils.parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        base = None
    if base is None or when.tzinfo is None or base.tzinfo is None:
        return None
    return max(0.0, (when - base).total_seconds())
