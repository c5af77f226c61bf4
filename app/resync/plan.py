"""A resync's parts and pages, and which listed resources the mirror lacks. Pure.

A run over a company covers each company-level type once and each project-level type in
every permitted project; a run over a project covers that project's types only. A type is
covered by its lists (app.registry.resources: the active records, and the inactive ones where
Procore lists them apart), and a dated type (daily logs) by day ranges over the last
`log_days` days. Each part is one list (and range), read page by page (`page`, `per_page`);
the last page is the one without a `Link: rel="next"` (else: `Total` reached, else: a short
page), FACTS.md §4.

The parts of one type in one scope form a group: what the mirror holds for that scope but no
part of the group listed is *absent*. Absent is not deleted (a list may leave out what still
exists): the pipeline asks Procore about each absent resource, and only a 404 deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app.procore import pages
from app.registry import resources
from app.registry.ids import id_of


@dataclass(frozen=True, slots=True)
class Part:
    resource_name: str
    project_id: int | None
    # Which of the type's lists (app.registry.resources.ResourceType.lists).
    listing: int = 0
    # Inclusive day range (ISO dates) of a dated list.
    window: tuple[str, str] | None = None

    @property
    def group(self) -> str:
        """The type in its scope: what absence is judged over."""
        return f"{self.resource_name}@{'-' if self.project_id is None else self.project_id}"

    @property
    def key(self) -> str:
        key = f"{self.group}#{self.listing}"
        return key if self.window is None else f"{key}@{self.window[0]}"

    def to_state(self) -> dict[str, Any]:
        return {
            "resource": self.resource_name,
            "project_id": self.project_id,
            "listing": self.listing,
            "window": None if self.window is None else list(self.window),
            "page": 1,
        }

    @classmethod
    def of_state(cls, state: Mapping[str, Any]) -> Part:
        window = state.get("window")
        return cls(
            state["resource"],
            state.get("project_id"),
            int(state.get("listing", 0)),
            None if not window else (str(window[0]), str(window[1])),
        )


def plan_parts(
    names: Iterable[str],
    project_ids: Iterable[int],
    *,
    today: date,
    log_days: int,
    project_id: int | None = None,
    resource_name: str | None = None,
) -> list[Part]:
    """The parts of a run, company-level first, then by project; each group's parts are
    consecutive (`group_ends` tells its last)."""
    wanted = [
        kind
        for name in names
        if (kind := resources.get(name)) is not None and resource_name in (None, name)
    ]
    if project_id is not None:
        return [
            p
            for k in wanted
            if not k.company_level
            for p in _parts_of(k, project_id, today, log_days)
        ]
    parts = [p for k in wanted if k.company_level for p in _parts_of(k, None, today, log_days)]
    for project in sorted(set(project_ids)):
        parts += [
            p for k in wanted if not k.company_level for p in _parts_of(k, project, today, log_days)
        ]
    return parts


def _parts_of(
    kind: resources.ResourceType, project_id: int | None, today: date, log_days: int
) -> list[Part]:
    ranges: list[tuple[str, str] | None] = [None]
    if kind.window is not None:
        ranges = list(day_ranges(today, log_days, kind.window.max_days))
    return [
        Part(kind.name, project_id, listing, window)
        for listing in range(len(kind.lists))
        for window in ranges
    ]


def day_ranges(today: date, days: int, max_days: int) -> Iterable[tuple[str, str]]:
    """`days` days up to today (inclusive), newest first, in ranges of at most `max_days`."""
    end = today
    first = today - timedelta(days=max(1, days) - 1)
    while end >= first:
        start = max(first, end - timedelta(days=max_days - 1))
        yield (start.isoformat(), end.isoformat())
        end = start - timedelta(days=1)


def group_ends(parts: Sequence[Part]) -> list[bool]:
    """For each part, whether it is the last of its group."""
    return [i + 1 == len(parts) or parts[i + 1].group != p.group for i, p in enumerate(parts)]


def page_path(part: Part, company_id: int, page: int, per_page: int) -> str:
    kind = resources.REGISTRY[part.resource_name]
    path = resources.list_paths(kind, company_id=company_id, project_id=part.project_id)[
        part.listing
    ]
    query: dict[str, object] = {}
    if part.window is not None and kind.window is not None:
        query[kind.window.start_param], query[kind.window.end_param] = part.window
    if kind.paginated:
        query.update(page=page, per_page=per_page)
    if not query:
        return path
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{urlencode(query)}"


def is_last_page(
    part: Part, headers: Mapping[str, str] | None, page: int, per_page: int, count: int
) -> bool:
    """An unpaginated list is one page; otherwise Procore's pagination decides."""
    if not resources.REGISTRY[part.resource_name].paginated:
        return True
    return not pages.has_next_page(headers, page, per_page, count)


def listed_id(kind: resources.ResourceType, item: Any) -> int | None:
    """The integer id of a listed item (v2.0 string ids too)."""
    return id_of(item.get(kind.id_field)) if isinstance(item, dict) else None


@dataclass(frozen=True, slots=True)
class Known:
    """What the mirror holds for one resource."""

    procore_updated_at: datetime | None
    deleted: bool
    data: dict[str, Any] | None


def to_write(
    listed: Sequence[tuple[int, datetime | None, dict[str, Any]]], known: Mapping[int, Known]
) -> list[int]:
    """Ids of listed resources the mirror lacks or holds older; unchanged ones are left alone
    (so a resync of an unchanged company writes nothing, and a list body never replaces an
    equally new show body)."""
    ids: list[int] = []
    for resource_id, updated_at, data in listed:
        held = known.get(resource_id)
        if held is None or held.deleted:
            ids.append(resource_id)
        elif updated_at is not None and held.procore_updated_at is not None:
            if updated_at > held.procore_updated_at:
                ids.append(resource_id)
        elif held.data != data:
            ids.append(resource_id)
    return ids
