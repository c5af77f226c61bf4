"""What a destination's answer tells the sender (app.delivery.sender)."""

from __future__ import annotations

import httpx
import pytest

from app.delivery.sender import retry_after


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (503, {"Retry-After": "0.5"}, 0.5),
        # RFC 9110 §10.2.3: an HTTP date, relative to the answer's own Date.
        (
            429,
            {
                "Retry-After": "Tue, 01 Dec 2026 10:00:30 GMT",
                "Date": "Tue, 01 Dec 2026 10:00:00 GMT",
            },
            30.0,
        ),
        (429, {"Retry-After": "a while"}, None),
        (429, {"Retry-After": "172800"}, None),  # two days: not a wait the sender takes
        (500, {"Retry-After": "7"}, None),  # only 429 and 503 ask to wait
        (429, {}, None),
    ],
)
def test_a_destinations_retry_after_is_read_in_both_forms(
    status: int, headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(httpx.Response(status, headers=headers)) == expected
