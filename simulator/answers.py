"""How the simulator writes HTTP answers: orjson bodies and Procore's error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

NOT_CONNECTED = "App is not connected to this company."
NO_PROJECT_ACCESS = "You do not have permission to access this project."
NOT_FOUND = "Record not found."
NO_TOOL_PERMISSION = "You do not have permission to perform this action."
TOOL_DISABLED = "This tool is not enabled in this project."


def json_answer(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def errors_answer(
    status: int, *messages: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The `{"errors": [...]}` shape most Procore v1 endpoints use."""
    return json_answer({"errors": list(messages)}, status, headers)


def text_answer(body: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type="text/plain")
