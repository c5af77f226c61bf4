"""(r) The floor of any endpoint on these uvicorn flags: a raw ASGI callable that checks the
Authorization header, reads the body and answers 202. No framework, no parsing, no I/O.

Run by bench/ingest.py as `uvicorn bench.raw_app:app`.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

WEBHOOK_TOKEN = os.environ.get("BENCH_WEBHOOK_TOKEN", "bench-webhook-token").encode()
ACCEPTED = b'{"status":"accepted"}'
REFUSED = b'{"detail":"bad Authorization"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    authorization = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    ok = hmac.compare_digest(authorization, WEBHOOK_TOKEN)
    body = ACCEPTED if ok else REFUSED
    await send(
        {
            "type": "http.response.start",
            "status": 202 if ok else 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
