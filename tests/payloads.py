"""Webhook bodies in Procore's three payload versions (FACTS.md §1), for tests and benchmarks."""

from __future__ import annotations

import itertools
from typing import Any

from ulid import ULID

_ids = itertools.count(4_410_002)
BIG_ID = 9_007_199_254_740_993 + 12  # above 2^53: a float would lose it


def new_ulid() -> str:
    return str(ULID())


def v2(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": BIG_ID + next(_ids),
        "ulid": new_ulid(),
        "timestamp": "2026-03-02T10:15:30.123456Z",
        "metadata": {
            "source_user_id": 77,
            "source_company_id": 31,
            "source_project_id": 900,
            "source_operation_id": None,
            "source_application_id": None,
        },
        "user_id": 77,
        "company_id": 31,
        "project_id": 900,
        "api_version": "v2.0",
        "event_type": "update",
        "resource_name": "RFIs",
        "resource_id": 5150,
    }
    body.update(overrides)
    return body


def v3(**overrides: Any) -> dict[str, Any]:
    body = v2(api_version="v3.0", related_resources=[])
    body.update(overrides)
    return body


def v4(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": new_ulid(),
        "timestamp": "2026-03-02T10:15:30.123456Z",
        "reason": "update",
        "company_id": "31",
        "project_id": "900",
        "user_id": "77",
        "resource_type": "Submittals",
        "resource_id": "8812",
    }
    body.update(overrides)
    return body
