"""POST /webhooks/procore — authenticate, bound, parse, store durably, answer fast.

A non-2xx answer makes Procore pause *all* deliveries to this endpoint, so a valid event never
gets one; only Postgres being unable to store it (503) does, since Procore will then retry.

This is the one hot path of the api, so it is served as a plain ASGI endpoint: the service app
hands it `POST /webhooks/procore` before the framework's routing, middleware and request
objects (which cost more than the whole durable ingest). Everything else goes through FastAPI.
The OpenAPI schema documents it like any other route (`openapi_path`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from app import bodies, metrics
from app.deadlines import Deadlines
from app.logs import get_logger
from app.settings import Settings
from app.webhooks.payloads import NormalisedEvent, PayloadRejected, read_event
from app.webhooks.service import (
    Ingester,
    IngestResult,
    IngestStatus,
    StorageRefused,
    StorageUnavailable,
)
from app.webhooks.tokens import WebhookTokens

log = get_logger(__name__)

WEBHOOK_PATH = "/webhooks/procore"
# Answers given before the body was read whole: the connection cannot carry another request.
_BODY_UNREAD = frozenset({401, 408, 413})


class WebhookEndpoint:
    """The ASGI endpoint for Procore's deliveries."""

    def __init__(self, settings: Settings, ingester: Ingester) -> None:
        self._settings = settings
        self._ingester = ingester
        self._tokens = WebhookTokens(settings)
        self._limit = settings.webhook_max_body_bytes
        # Every body read within BODY_READ_TIMEOUT_SECONDS, kept by one periodic check.
        self._body_deadlines = Deadlines(settings.body_read_timeout_seconds)

    def start(self) -> None:
        self._body_deadlines.start()

    async def stop(self) -> None:
        await self._body_deadlines.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, content = await self._answer(scope, receive)
        except Exception:  # the endpoint must answer, whatever happened
            log.exception("webhook.unexpected_error")
            metrics.webhook_rejected("internal")
            status, content = 500, {"detail": "internal error"}
        body = orjson.dumps(content)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status in _BODY_UNREAD:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        headers = dict(scope["headers"])
        presented = self._tokens.verify(headers.get(b"authorization"))
        if presented is None:
            metrics.webhook_rejected("auth")
            return 401, {"detail": "missing or invalid Authorization header"}
        try:
            body = await bodies.read_bounded(
                receive,
                scope,
                limit=self._limit,
                within=self._settings.body_read_timeout_seconds,
                deadlines=self._body_deadlines,
            )
        except bodies.BodyTooLarge:
            metrics.webhook_rejected("too_large")
            return 413, {"detail": f"body larger than {self._limit} bytes"}
        except (bodies.BodyTooSlow, bodies.ClientGone):
            metrics.webhook_rejected("too_slow")
            return 408, {"detail": "request body not received in time"}
        try:
            event = read_event(body, own_client_id=self._settings.procore_client_id)
        except PayloadRejected as exc:
            log.info("webhook.rejected", status=exc.status, field=exc.field, reason=exc.message)
            metrics.webhook_rejected("not_json" if exc.status == 400 else "unroutable")
            content: dict[str, Any] = {"detail": exc.message}
            if exc.field is not None:
                content["field"] = exc.field
            return exc.status, content
        if not presented.allows(event.company_id):
            # Procore sends each company's events with that company's token: never this.
            log.warning(
                "webhook.company_mismatch",
                token_company_id=presented.company_id,
                company_id=event.company_id,
            )
            metrics.webhook_rejected("auth")
            return 403, {
                "detail": "the Authorization token belongs to another company",
                "field": "company_id",
            }
        try:
            # Within WEBHOOK_STORE_TIMEOUT_SECONDS, or StorageUnavailable (the ingester's clock).
            result = await self._store(event)
        except StorageUnavailable:
            metrics.webhook_rejected("storage")
            return 503, {"detail": "storage unavailable, retry later"}
        except StorageRefused as exc:
            metrics.webhook_rejected("storage")
            return 422, {"detail": f"event cannot be stored: {exc}", "field": "body"}
        duplicate = result.status is IngestStatus.DUPLICATE
        metrics.webhook_received(event.payload_version, duplicate=duplicate)
        if duplicate:
            return 200, {"status": "duplicate"}
        metrics.webhook_stored_as(result.stored_as or event.status)
        return 202, {"status": "accepted", "event_id": result.event_id}

    async def _store(self, event: NormalisedEvent) -> IngestResult:
        """The event, then what it brings along (a parent to refresh): all committed before
        the answer, so a retried delivery completes what a failed one began."""
        if not event.related:
            return await self._ingester.submit(event)
        primary, *related = await asyncio.gather(
            self._ingester.submit(event),
            *(self._ingester.submit(r) for r in event.related),
            return_exceptions=True,
        )
        for outcome in related:
            # Unavailable storage fails the delivery (Procore retries); a derived row that
            # Postgres refuses must not refuse the event itself.
            if isinstance(outcome, StorageUnavailable):
                raise outcome
        if isinstance(primary, BaseException):
            raise primary
        return primary


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# The OpenAPI entry for the endpoint (it bypasses FastAPI's routing, so it is declared here).
OPENAPI_PATH: dict[str, Any] = {
    "post": {
        "tags": ["webhooks"],
        "summary": "Receive one Procore webhook event (v2.0, v3.0 or v4.0 payload)",
        "operationId": "receive_webhook",
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "description": (
                    "The value configured as the hook's destination_headers: the company's "
                    "own token, or a shared token (WEBHOOK_SHARED_TOKENS) for hand-made hooks"
                ),
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "responses": {
            "202": {
                "description": "Stored durably and queued",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string", "enum": ["accepted"]},
                                "event_id": {"type": "integer"},
                            },
                        }
                    }
                },
            },
            "200": {"description": 'Already received (same ULID): {"status": "duplicate"}'},
            "400": _error("Body is not JSON"),
            "401": _error("Missing or wrong Authorization header"),
            "403": _error("The token belongs to another company than the body names"),
            "408": _error("Body not received within BODY_READ_TIMEOUT_SECONDS"),
            "413": _error("Body larger than WEBHOOK_MAX_BODY_BYTES"),
            "422": _error("JSON that cannot be stored and routed; `field` names why"),
            "503": _error("Storage unavailable; nothing acknowledged, Procore retries"),
        },
    }
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error: `detail` says why (for invalid input, the list of what is wrong)",
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "field": {"type": "string"},
    },
    "required": ["detail"],
}
