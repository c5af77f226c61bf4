"""POST /webhooks/procore — authenticate, bound, parse, store durably, answer fast.

A non-2xx answer makes Procore pause *all* deliveries to this endpoint, so a valid event never
gets one; only Postgres being unable to store it (503) does, since Procore will then retry.
"""

from __future__ import annotations

import asyncio
import hmac

import orjson
from fastapi import APIRouter, Request, Response

from app.logs import get_logger
from app.settings import Settings
from app.webhooks.payloads import PayloadRejected, read_event
from app.webhooks.service import Ingester, IngestStatus, StorageRefused, StorageUnavailable

log = get_logger(__name__)

router = APIRouter(tags=["webhooks"])


class BodyTooLarge(Exception):
    pass


def _json(status: int, content: dict[str, object]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def authorized(header: str | None, accepted: list[bytes]) -> bool:
    """Compare against every accepted value (rotation) in constant time, without stopping early."""
    if not header or not accepted:
        return False
    presented = header.encode()
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(presented, token)
    return matched


async def _read_bounded(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/procore",
    status_code=202,
    summary="Receive one Procore webhook event (v2.0, v3.0 or v4.0 payload)",
    responses={
        200: {"description": 'Already received (same ULID): `{"status": "duplicate"}`'},
        202: {"description": '`{"status": "accepted", "event_id": <id>}`'},
        400: {"description": "Body is not JSON"},
        401: {"description": "Missing or wrong Authorization header"},
        413: {"description": "Body larger than WEBHOOK_MAX_BODY_BYTES"},
        422: {"description": "JSON that cannot be stored and routed; `field` names why"},
        503: {"description": "Storage unavailable; nothing acknowledged, Procore retries"},
    },
)
async def receive_webhook(request: Request) -> Response:
    settings: Settings = request.app.state.runtime.settings
    if not authorized(request.headers.get("authorization"), request.app.state.webhook_tokens):
        return _json(401, {"detail": "missing or invalid Authorization header"})
    try:
        body = await _read_bounded(request, settings.webhook_max_body_bytes)
    except BodyTooLarge:
        return _json(413, {"detail": f"body larger than {settings.webhook_max_body_bytes} bytes"})
    try:
        event = read_event(body, own_client_id=settings.procore_client_id)
    except PayloadRejected as exc:
        log.info("webhook.rejected", status=exc.status, field=exc.field, reason=exc.message)
        content: dict[str, object] = {"detail": exc.message}
        if exc.field is not None:
            content["field"] = exc.field
        return _json(exc.status, content)

    ingester: Ingester = request.app.state.ingester
    try:
        result = await asyncio.wait_for(
            ingester.submit(event), timeout=settings.webhook_store_timeout_seconds
        )
    except (StorageUnavailable, TimeoutError):
        return _json(503, {"detail": "storage unavailable, retry later"})
    except StorageRefused as exc:
        return _json(422, {"detail": f"event cannot be stored: {exc}", "field": "body"})
    if result.status is IngestStatus.DUPLICATE:
        return _json(200, {"status": "duplicate"})
    return _json(202, {"status": "accepted", "event_id": result.event_id})
