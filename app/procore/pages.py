"""Procore's pagination (FACTS.md §4): `page` and `per_page` in, `Link`, `Total` and
`Per-Page` out. Pure."""

from __future__ import annotations

from collections.abc import Mapping


def has_next_page(headers: Mapping[str, str] | None, page: int, per_page: int, count: int) -> bool:
    """Procore's pagination: a `Link` rel="next", else `Total`, else a full page."""
    if headers is not None:
        link = headers.get("link")
        if link is not None:
            return 'rel="next"' in link
        total = headers.get("total")
        if total is not None and total.isdigit():
            return page * per_page < int(total)
    return count >= per_page
