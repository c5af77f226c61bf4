"""classify(): every row of DESIGN.md's table, and every body shape of FACTS.md §6."""

from __future__ import annotations

import orjson
import pytest

from app.procore.answers import OutcomeKind, classify, message_of, rate_headers

NOT_CONNECTED = orjson.dumps({"errors": ["App is not connected to this company."]})


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b'{"id": 1}', OutcomeKind.OK),
        (201, b"", OutcomeKind.OK),
        (204, b"", OutcomeKind.OK),
        (401, b'{"errors": "The access token is invalid"}', OutcomeKind.UNAUTHORIZED),
        (403, NOT_CONNECTED, OutcomeKind.NOT_INSTALLED),
        (403, b'{"errors": "App is NOT connected to this company"}', OutcomeKind.NOT_INSTALLED),
        (403, b"App is not connected to this company.", OutcomeKind.NOT_INSTALLED),
        (
            403,
            b'{"errors": ["You do not have permission to access this project."]}',
            OutcomeKind.FORBIDDEN,
        ),
        (403, b"", OutcomeKind.FORBIDDEN),
        (404, b'{"errors": ["Record not found."]}', OutcomeKind.NOT_FOUND),
        (409, b'{"errors": ["conflict"]}', OutcomeKind.REJECTED),
        (422, b'{"errors": {"subject": ["can\'t be blank"]}}', OutcomeKind.REJECTED),
        (400, b'{"errors": ["Missing Procore-Company-Id header."]}', OutcomeKind.REJECTED),
        (410, b"", OutcomeKind.REJECTED),
        (429, b"You have surpassed the max number of requests", OutcomeKind.RATE_LIMITED),
        (500, b"boom", OutcomeKind.TRANSIENT),
        (502, b"<html>bad gateway</html>", OutcomeKind.TRANSIENT),
        (503, b"", OutcomeKind.TRANSIENT),
        (504, b"", OutcomeKind.TRANSIENT),
        (302, b"", OutcomeKind.REJECTED),
    ],
)
def test_status_classes(status: int, body: bytes, kind: OutcomeKind) -> None:
    outcome = classify(status, {}, body)
    assert outcome.kind is kind
    assert outcome.status == status


def test_no_answer_is_transient() -> None:
    outcome = classify(None, {}, "timeout")
    assert outcome.kind is OutcomeKind.TRANSIENT
    assert outcome.status is None
    assert outcome.message == "timeout"


def test_503_with_retry_after_is_rate_limited_not_a_failure() -> None:
    outcome = classify(503, {"Retry-After": "7"}, b"")
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.retry_after == 7.0


def test_429_carries_reset_and_retry_after() -> None:
    outcome = classify(
        429,
        {"X-Rate-Limit-Reset": "1700000010", "retry-after": "3", "X-Rate-Limit-Remaining": "0"},
        b"You have surpassed the max number of requests for an hour.",
    )
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.rate_reset == 1700000010
    assert outcome.retry_after == 3
    assert "surpassed" in outcome.message


def test_retry_after_as_http_date() -> None:
    outcome = classify(
        429,
        {"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"},
        b"",
    )
    assert outcome.retry_after == 30


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"errors": ["App is not connected to this company."]}, "App is not connected"),
        ({"errors": "Subject is too long"}, "Subject is too long"),
        (
            {"error": {"code": "invalid_params", "message": "Bad value", "details": ["x > 3"]}},
            "invalid_params; Bad value; x > 3",
        ),
        (
            {"code": 422, "message": "Unprocessable", "reason": "closed", "error": "Invalid"},
            "Invalid; 422; Unprocessable; closed",
        ),
        ({"error": "invalid_grant", "error_description": "The grant is invalid"}, "invalid_grant"),
        ({"errors": {"subject": ["can't be blank"]}}, "subject: can't be blank"),
    ],
)
def test_body_shapes_become_one_line(body: object, expected: str) -> None:
    message = message_of(orjson.dumps(body).decode())
    assert expected in message
    assert "\n" not in message


def test_403_body_variants_are_searched_for_not_connected() -> None:
    shapes = [
        {"errors": "App is not connected to this company."},
        {"error": {"code": "forbidden", "message": "App is not connected to this company."}},
        {"code": 403, "message": "App is not connected to this company.", "error": ""},
    ]
    for shape in shapes:
        assert classify(403, {}, orjson.dumps(shape)).kind is OutcomeKind.NOT_INSTALLED
    plain = b"App is not connected to this company."
    assert classify(403, {}, plain).kind is OutcomeKind.NOT_INSTALLED


def test_plain_text_and_long_bodies_are_excerpted() -> None:
    assert message_of("  Service\n Unavailable ") == "Service Unavailable"
    long = "x" * 5000
    assert len(message_of(long)) == 500


def test_rate_headers_any_case() -> None:
    parsed = rate_headers(
        {"x-rate-limit-limit": "25", "X-RATE-LIMIT-REMAINING": "3", "X-Rate-Limit-Reset": "17"}
    )
    assert (parsed.limit, parsed.remaining, parsed.reset) == (25, 3, 17.0)
    assert rate_headers({}).limit is None
