"""Opaque page cursors: the client passes back what it was given and reads nothing into it.

A cursor names the kind of listing it belongs to, so one from another listing (or another
sort order) is refused instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii


class InvalidCursor(ValueError):
    pass


def encode(kind: str, position: int) -> str:
    raw = f"{kind}:{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not one this service issued") from exc
    found, _, position = raw.partition(":")
    digits = position.lstrip("-")
    if found != kind or not (digits.isascii() and digits.isdigit()):
        raise InvalidCursor("cursor belongs to another listing or order")
    return int(position)
