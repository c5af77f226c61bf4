"""Procore's ids as they come: integers in v1.x answers, digit strings in v2.0 answers (and
in v4.0 webhooks). Pure."""

from __future__ import annotations


def id_of(value: object) -> int | None:
    """The integer id, or None when `value` is none (a boolean is not an id)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
