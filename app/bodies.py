"""Request bodies are read bounded, on every route, before anything looks at them.

A request costs at most the cap in memory, whatever it declares or sends, and no more than
BODY_READ_TIMEOUT_SECONDS of waiting: a body trickled at one byte a second is cut off.

- `read_bounded` is the one reader: the webhook endpoint uses it (after its token check, with
  WEBHOOK_MAX_BODY_BYTES), and `buffered` uses it for every other route (with
  API_MAX_BODY_BYTES) before the framework, its routing or any authentication runs. A
  declared `Content-Length` over the cap is refused without reading a byte.
- The framework then gets the body from memory, as if it had just arrived.
- The webhook endpoint's deadline is kept by one periodic check of all its reads
  (`app.deadlines`), every other route's by a timer of its own (`asyncio.timeout`).
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import Message, Receive, Scope, Send

from app.deadlines import Deadlines


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class ClientGone(Exception):
    pass


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return None


async def read_bounded(
    receive: Receive,
    scope: Scope,
    *,
    limit: int,
    within: float,
    deadlines: Deadlines | None = None,
) -> bytes:
    """The whole body, or BodyTooLarge past `limit` bytes, BodyTooSlow past `within` seconds
    in all, ClientGone if the client left. With `deadlines` (of `within` seconds), the
    deadline is theirs: one periodic check for every read, not a timer each."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    if deadlines is None:
        # One deadline for the whole body, in this task (no task per chunk, as wait_for makes).
        try:
            async with asyncio.timeout(within):
                return await _read(receive, limit)
        except TimeoutError as exc:
            raise BodyTooSlow from exc
    task = asyncio.current_task(deadlines.loop)
    if task is None:
        raise RuntimeError("read_bounded runs in a task")
    cancelling = task.cancelling()
    wait = deadlines.add(task.cancel)
    try:
        return await _read(receive, limit)
    except asyncio.CancelledError:
        # Given up by the deadline, and cancelled by nobody else: too slow.
        if wait.expired and task.uncancel() <= cancelling:
            raise BodyTooSlow from None
        raise
    finally:
        wait.done = True


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            # The usual case: the whole body in one message.
            return chunk if not chunks else b"".join((*chunks, chunk))
        chunks.append(chunk)


async def answer(send: Send, status: int, detail: str) -> None:
    """A JSON problem answer that also closes the connection (the rest of the body is unread)."""
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def buffered(
    scope: Scope, receive: Receive, send: Send, *, limit: int, within: float
) -> Receive | None:
    """Read the request's body bounded and return a `receive` that hands it on from memory;
    or answer 413/408 (or nothing, if the client left) and return None."""
    try:
        body = await read_bounded(receive, scope, limit=limit, within=within)
    except BodyTooLarge:
        await answer(send, 413, f"body larger than {limit} bytes")
        return None
    except BodyTooSlow:
        await answer(send, 408, "request body not received in time")
        return None
    except ClientGone:
        return None
    return _replay(body, receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the disconnect, when the client leaves

    return replayed
