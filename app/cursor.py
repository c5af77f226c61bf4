"""Page cursors: `<listing>.<position>`, e.g. `gates.42`, passed back as they were given.

A cursor names its listing, so one from another listing is refused instead of silently
skipping rows; the published schema gives each cursor parameter its exact pattern
(`pattern`), so that what the schema allows and what the service accepts are the same set.
The position is a row id or a change sequence: at most 18 digits, inside a Postgres bigint.
"""

from __future__ import annotations

import re

POSITION_DIGITS = 18


class InvalidCursor(ValueError):
    pass


def pattern(kind: str) -> str:
    """The regular expression every cursor of listing `kind` matches (and only those)."""
    return rf"^{re.escape(kind)}\.(0|[1-9][0-9]{{0,{POSITION_DIGITS - 1}}})$"


def encode(kind: str, position: int) -> str:
    return f"{kind}.{position}"


def decode(kind: str, cursor: str) -> int:
    if re.fullmatch(pattern(kind), cursor) is None:
        raise InvalidCursor(f"not a cursor of this listing (expected {kind}.<position>)")
    return int(cursor.rpartition(".")[2])
