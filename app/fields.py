"""Types of what the HTTP API accepts, shared by every router: ids, moments, resource names.

Each is declared so that the published schema and the validation are the same set: anything
the schema allows is accepted, anything else is refused with 422 naming the field (never a
500 from the database afterwards).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool

from app.registry import resources

# Ids are Postgres bigints. In a path or a query string they are text: every bigint is taken.
ID_MAX = 2**63 - 1
# In a JSON body they are numbers, which most clients (JavaScript) and schema checkers hold as
# doubles: exact only up to 2^53 - 1, so a body id stays there (both sides then agree on it).
JSON_ID_MAX = 2**53 - 1


def id_from_text(value: str) -> int | None:
    """An id written in a query string, or None when it is not one (never an error)."""
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 1 <= number <= ID_MAX else None


def _json_integer(value: Any) -> Any:
    # What JSON Schema calls an integer: a number with no fraction (1 and 1.0), not the text
    # "1" nor a boolean.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a JSON integer")
        return int(value)
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return value


# Numbers and flags in a JSON body are what they say: `"1"` is not 1, and 0 is not false.
BodyId = Annotated[int, Field(ge=1, le=JSON_ID_MAX), BeforeValidator(_json_integer)]
BodyNumber = Annotated[float, BeforeValidator(_json_number)]
Flag = StrictBool

# Text that goes into Postgres, which refuses the NUL character in text (the schema says so).
NO_NUL = r"^[^\x00]*$"

# Moments the driver can send: it turns the extreme datetimes into Postgres's ±infinity.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)

_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
# The published form of a moment: an RFC 3339 date-time of a year Python can hold (not 0000).
MOMENT_SCHEMA: dict[str, Any] = {"pattern": "^(?!0000)"}


def _iso_text(value: Any) -> Any:
    # A moment is written as RFC 3339 text, as the schema says (`format: date-time`); a bare
    # number is not read as a unix time.
    if isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _RFC3339.match(value)):
        raise ValueError("a moment is an RFC 3339 date-time, e.g. 2026-03-02T10:15:30Z")
    return value


def _in_range(value: datetime) -> datetime:
    """The moment in UTC, clamped into what the database holds: as a filter bound, a moment
    before the first or after the last representable one means the same as that one."""
    naive = value.replace(tzinfo=None)
    offset = value.utcoffset() or timedelta(0)
    try:
        moment = (naive - offset).replace(tzinfo=UTC)
    except OverflowError:
        return _EARLIEST if offset > timedelta(0) else _LATEST
    return min(max(moment, _EARLIEST), _LATEST)


Moment = Annotated[
    datetime,
    Field(json_schema_extra=MOMENT_SCHEMA),
    BeforeValidator(_iso_text),
    AfterValidator(_in_range),
]


def known_resource(value: str | None) -> str | None:
    if value is not None and not resources.is_supported(value):
        raise ValueError(f"unknown resource {value!r} (supported: {', '.join(resources.NAMES)})")
    return value


# A resource type as webhooks name it, one of the registry's (published as an enum).
RESOURCE_ENUM: dict[str, Any] = {"enum": [*resources.NAMES, None]}
ResourceName = Annotated[
    str | None, Field(json_schema_extra=RESOURCE_ENUM), AfterValidator(known_resource)
]
