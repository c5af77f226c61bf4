"""Procore webhook payloads (v2.0, v3.0, v4.0) → one internal event.

Liberal by design: every refusal makes Procore pause *all* deliveries to this endpoint, so a
body is refused only when it cannot be stored and routed at all — not a JSON object, no dedupe
key, no usable 64-bit company id. Anything else is stored; what cannot be processed is stored
as `unsupported` (visible, replayable), and unknown extra fields stay in the raw payload.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from app.models import EventStatus
from app.registry import resources

INT64_MAX = 2**63 - 1

# v2/v3 `event_type` and v4 `reason` (newer resources use the past tense) → our three kinds.
EVENT_KINDS = {
    "create": "create",
    "created": "create",
    "update": "update",
    "updated": "update",
    "restored": "update",
    "delete": "delete",
    "deleted": "delete",
    "destroyed": "delete",
    "recycled": "delete",
}

# Column widths of the events table: longer values are cut (the raw payload keeps them whole).
_WIDTHS = {"dedupe_key": 64, "resource_name": 128, "event_type": 32, "reason": 64, "source": 128}


class PayloadRejected(ValueError):
    """The body cannot be stored and routed. `status` is the HTTP answer, `field` names why."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


# Not frozen: one is built per webhook, and a frozen dataclass sets each of its 17 fields
# through object.__setattr__ (about 1.5 us more a webhook). Nothing changes one once built
# (`dataclasses.replace` makes the variants).
@dataclass(slots=True)
class NormalisedEvent:
    dedupe_key: str
    payload_version: str
    procore_event_id: int | None
    company_id: int
    project_id: int | None
    user_id: int | None
    resource_name: str | None
    resource_id: int | None
    event_type: str | None
    reason: str | None
    source_application_id: str | None
    occurred_at: datetime | None
    status: EventStatus
    # Why the event is stored but not processed (ignored / unsupported); None when queued.
    note: str | None
    # The payload as JSON text, ready for a jsonb column.
    raw: str
    # Events derived from this one and stored beside it: the parent a v3.0 event's
    # `related_resources` names, where the registry says it is refreshed too.
    related: tuple[NormalisedEvent, ...] = field(default=())


def read_event(body: bytes, *, own_client_id: str) -> NormalisedEvent:
    """Parse and normalise one webhook body; raise PayloadRejected for what cannot be stored."""
    data, exact = _parse(body)
    try:
        if not exact:
            data = _storable(data)
        return _normalise(data, body if exact else None, own_client_id=own_client_id)
    except RecursionError as exc:
        # Parsed (orjson goes 1,024 levels deep), but too deep to rewrite as storable text.
        raise PayloadRejected(400, None, "body is nested too deeply") from exc


def _parse(body: bytes) -> tuple[dict[str, Any], bool]:
    """The JSON object and whether `body` itself can be stored as its jsonb text."""
    try:
        data = orjson.loads(body)
        exact = b"\\u0000" not in body
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, which are still valid JSON.
        data = _parse_strict_json(body)
        exact = False
    if not isinstance(data, dict):
        raise PayloadRejected(422, "body", "payload must be a JSON object")
    return data, exact


def _parse_strict_json(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def finite_or_text(literal: str) -> Any:
        # 1e400 is valid JSON but no float: keep the literal (jsonb refuses Infinity).
        number = float(literal)
        return number if math.isfinite(number) else literal

    try:
        return json.loads(
            body.decode("utf-8"),
            parse_constant=refuse_constant,
            parse_float=finite_or_text,
            parse_int=_int_or_literal,
        )
    except RecursionError as exc:
        raise PayloadRejected(400, None, "body is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadRejected(400, None, "body is not valid JSON") from exc


class HugeInteger(str):
    """An integer literal too long to convert (Python refuses over 4,300 digits, since the
    conversion is quadratic): kept as its text (a JSON string in the stored payload, which
    every reader can load again), and never an id."""

    __slots__ = ()


# Python's own default limit on int(str) (sys.get_int_max_str_digits()).
_MAX_INT_DIGITS = 4300
# A 64-bit id has at most 19 digits; a few more allow for signs, zeros and spaces.
_MAX_ID_CHARS = 24


def _int_or_literal(literal: str) -> int | str:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        return HugeInteger(literal)
    return int(literal)


def _normalise(
    data: dict[str, Any], exact_body: bytes | None, *, own_client_id: str
) -> NormalisedEvent:
    is_v4 = "ulid" not in data and ("reason" in data or "resource_type" in data)
    dedupe_key = _dedupe_key(data, is_v4)
    company_id = _int64(data.get("company_id"))
    if company_id is None or company_id <= 0:
        raise PayloadRejected(422, "company_id", "company_id must be a positive 64-bit integer")

    notes: list[str] = []
    project_id = _optional_id(data, "project_id", notes)
    user_id = _optional_id(data, "user_id", None)
    resource_id = _optional_id(data, "resource_id", notes)
    resource_name = _text(data.get("resource_type" if is_v4 else "resource_name"))
    reason = _text(data.get("reason" if is_v4 else "event_type"))
    event_type = EVENT_KINDS.get(reason.lower()) if reason else None

    kind = resources.get(resource_name)
    notes_cutover = None
    if kind is not None and event_type is not None:
        served = resources.get(kind.served_as(event_type))
        if served is not None and served is not kind:
            # An update Procore moved to another type (the fan-out deprecation) is served by
            # that type: one fetch of the company record per change. Its fan-out copies (one
            # per project, each with its own ULID) are one event, as Procore advises for the
            # cutover: deduplicated on (resource_id, timestamp).
            notes_cutover = f"{kind.name} {event_type} served as {served.name}"
            dedupe_key = _cutover_key(company_id, served.name, data) or dedupe_key
            kind, resource_name = served, served.name
            project_id = None if served.company_level else project_id
    if kind is None:
        notes.append(f"unsupported resource {resource_name!r}")
    elif not kind.company_level and project_id is None:
        notes.append(f"{resource_name} needs a project_id")
    if event_type is None:
        notes.append(f"unsupported reason {reason!r}")
    if resource_id is None and data.get("resource_id") is None:
        notes.append("no resource_id")

    metadata = data.get("metadata")
    source = None
    if isinstance(metadata, dict) and metadata.get("source_application_id") is not None:
        source = str(metadata["source_application_id"])

    note: str | None
    if source is not None and own_client_id and source == own_client_id:
        status, note = EventStatus.IGNORED, "caused by this app (loop prevention)"
    elif notes:
        status, note = EventStatus.UNSUPPORTED, "; ".join(notes)
    else:
        status, note = EventStatus.QUEUED, notes_cutover

    event = NormalisedEvent(
        dedupe_key=dedupe_key,
        payload_version=_version(data, is_v4),
        procore_event_id=None if is_v4 else _int64(data.get("id")),
        company_id=company_id,
        project_id=project_id,
        user_id=user_id,
        resource_name=_cut(resource_name, "resource_name"),
        resource_id=resource_id,
        event_type=event_type,
        reason=_cut(reason, "reason"),
        source_application_id=_cut(source, "source"),
        occurred_at=_timestamp(data.get("timestamp")),
        status=status,
        note=note,
        raw=exact_body.decode("utf-8") if exact_body is not None else _jsonb_text(data),
    )
    if status is EventStatus.QUEUED and kind is not None and kind.parent is not None:
        event = replace(event, related=_parents(event, kind.parent, data))
    return event


def _cutover_key(company_id: int, resource_name: str, data: dict[str, Any]) -> str | None:
    resource_id, timestamp = _int64(data.get("resource_id")), data.get("timestamp")
    if resource_id is None or not isinstance(timestamp, str) or not timestamp:
        return None
    digest = hashlib.sha256(f"{company_id}|{resource_name}|{resource_id}|{timestamp}".encode())
    return "CUTOVER:" + digest.hexdigest()[:48]


def _parents(
    event: NormalisedEvent, parent: str, data: dict[str, Any]
) -> tuple[NormalisedEvent, ...]:
    """The parent named in `related_resources` (v3.0), as an update event of its own."""
    related = data.get("related_resources")
    if not isinstance(related, list):
        return ()
    found: list[NormalisedEvent] = []
    for item in related[:16]:
        if not isinstance(item, dict) or item.get("name") != parent:
            continue
        parent_id = _int64(item.get("id"))
        if parent_id is None or parent_id <= 0:
            continue
        found.append(
            replace(
                event,
                dedupe_key=f"{event.dedupe_key}>{parent_id}"[: _WIDTHS["dedupe_key"]],
                procore_event_id=None,
                resource_name=parent,
                resource_id=parent_id,
                event_type="update",
                reason="related",
                note=f"parent of {event.resource_name} {event.resource_id}",
            )
        )
    return tuple(found)


def _dedupe_key(data: dict[str, Any], is_v4: bool) -> str:
    field = "id" if is_v4 else "ulid"
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise PayloadRejected(422, field, f"{field} must be a non-empty string (the event's ULID)")
    key = value.strip().upper()
    if len(key) > _WIDTHS["dedupe_key"]:
        raise PayloadRejected(422, field, f"{field} is longer than 64 characters")
    return key


def _version(data: dict[str, Any], is_v4: bool) -> str:
    if is_v4:
        return "v4"
    if "related_resources" in data:
        return "v3"
    api_version = data.get("api_version")
    if isinstance(api_version, str) and api_version.startswith("v3"):
        return "v3"
    return "v2"


# Parsed values that are never ids, though `int` and `str` subclasses.
_NEVER_IDS = (bool, HugeInteger)


def _int64(value: object) -> int | None:
    """Ids arrive as JSON numbers (v2/v3, beyond 2^53) or strings (v4)."""
    if isinstance(value, _NEVER_IDS):
        return None
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str)
        and len(value) <= _MAX_ID_CHARS
        and value.strip().isascii()
        and value.strip().isdigit()
    ):
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        number = int(value)
    else:
        return None
    return number if -INT64_MAX <= number <= INT64_MAX else None


def _optional_id(data: dict[str, Any], field: str, notes: list[str] | None) -> int | None:
    """An id that may be absent; a present but unusable one is noted (if notes are kept)."""
    value = data.get(field)
    if value is None:
        return None
    number = _int64(value)
    if number is None and notes is not None:
        notes.append(f"{field} is not a 64-bit integer")
    return number


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _cut(value: str | None, width: str) -> str | None:
    return None if value is None else value[: _WIDTHS[width]]


# Body timestamps outside these are kept in the raw payload only: the driver turns the extreme
# datetimes into Postgres's ±infinity, and an offset can push a moment out of range.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _timestamp(value: object) -> datetime | None:
    """The body's `timestamp` as an aware UTC moment, or None when it is not a usable one (the
    event is still stored: an odd timestamp is no reason to refuse a delivery)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None
        moment = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment if _EARLIEST <= moment <= _LATEST else None


def _jsonb_text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def _storable(value: Any) -> Any:
    """Postgres text and jsonb refuse NUL characters and lone surrogates (which only the lenient
    parser lets through): replace them so the event can still be stored."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value
