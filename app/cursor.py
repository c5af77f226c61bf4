"""Page cursors: `<listing>.<position>`, e.g. `gates.42`, passed back as they were given.

A cursor names its listing, so one from another listing is refused instead of silently
skipping rows; the published schema gives each cursor parameter its exact pattern
(`pattern`), so that what the schema allows and what the service accepts are the same set.
The position is a row id or a change sequence: at most 18 digits, inside a Postgres bigint.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

POSITION_DIGITS = 18
# The largest page any listing gives.
MAX_PAGE = 500


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


async def read_page(
    session: AsyncSession,
    query: Select[Any],
    position: InstrumentedAttribute[int],
    *,
    kind: str,
    after: str | None,
    limit: int,
    newest_first: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of `query` by keyset: the rows past the cursor `after` in `position` order
    (rows arriving meanwhile never shift a page), at most `limit` (and MAX_PAGE), and the
    cursor that continues after the last (None on the last page). The position is read from
    the first entity of the last row."""
    size = min(limit, MAX_PAGE)
    if newest_first:
        query = query.order_by(position.desc())
        if after:
            query = query.where(position < decode(kind, after))
    else:
        query = query.order_by(position)
        if after:
            query = query.where(position > decode(kind, after))
    rows = list((await session.execute(query.limit(size + 1))).all())
    page = rows[:size]
    if len(rows) <= size:
        return page, None
    return page, encode(kind, int(getattr(page[-1][0], position.key)))
