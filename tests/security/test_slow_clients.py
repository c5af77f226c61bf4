"""Slow clients cannot hold the api (`procore-hooks api`): a request's headers arrive whole
within HEADER_READ_TIMEOUT_SECONDS and API_MAX_HEADER_BYTES or the connection is closed; a
body trickled a byte at a time is cut off after BODY_READ_TIMEOUT_SECONDS (408)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx

from app.runtime import Runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import WEBHOOK_TOKEN
from tests.security.api_process import api_process, closed_by_server

QUICK = {"HEADER_READ_TIMEOUT_SECONDS": "1", "BODY_READ_TIMEOUT_SECONDS": "1"}


async def connect(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(base)
    return await asyncio.open_connection(url.hostname, url.port)


async def test_half_sent_headers_are_cut_off_while_webhooks_flow(
    settings: Settings, db: Runtime
) -> None:
    async with api_process(settings, **QUICK) as base:
        silent = await connect(base)
        half = await connect(base)
        half[1].write(b"POST /webhooks/procore HTTP/1.1\r\nHost: x\r\nAuthoriz")
        await half[1].drain()
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.post(
                "/webhooks/procore",
                content=json.dumps(payloads.v2()).encode(),
                headers={"Authorization": WEBHOOK_TOKEN, "Content-Type": "application/json"},
            )
            assert answer.status_code == 202
        # Both are closed by the server (generous bound: only the deadline matters).
        assert await closed_by_server(silent[0], within=15) == b""
        assert await closed_by_server(half[0], within=15) == b""
        for _, writer in (silent, half):
            writer.close()


async def test_endless_headers_are_cut_off(settings: Settings, db: Runtime) -> None:
    async with api_process(settings, **QUICK) as base:
        reader, writer = await connect(base)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(200):
                writer.write(b"X-Padding: " + b"p" * 1000 + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        assert await closed_by_server(reader, within=15) is not None
        writer.close()


async def test_a_body_sent_a_byte_a_second_is_cut_off(settings: Settings, db: Runtime) -> None:
    async with api_process(settings, **QUICK) as base:
        reader, writer = await connect(base)
        body = json.dumps(payloads.v2()).encode()
        writer.write(
            b"POST /webhooks/procore HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {WEBHOOK_TOKEN}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        reply = asyncio.create_task(closed_by_server(reader, within=60))
        try:
            for byte in body:  # a byte a second, until the server answers
                if reply.done():
                    break
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break  # closed after its answer, which the reader has
                await asyncio.wait({reply}, timeout=1)
            answered = await reply
        finally:
            writer.close()
        assert answered is not None
        assert answered.startswith(b"HTTP/1.1 408"), answered[:200]
    async with db.sessions() as session:
        from sqlalchemy import text

        assert (await session.execute(text("SELECT count(*) FROM events"))).scalar() == 0


async def test_a_large_body_sent_with_its_headers_in_one_write_is_taken(
    settings: Settings, db: Runtime
) -> None:
    """The header bound counts headers only: a body arriving in the same read (up to the
    webhook's 256 KiB) is the body's business."""
    async with api_process(settings) as base:
        reader, writer = await connect(base)
        event = payloads.v2()
        event["padding"] = "p" * 200_000
        body = json.dumps(event).encode()
        writer.write(
            b"POST /webhooks/procore HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {WEBHOOK_TOKEN}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        try:
            answered = await closed_by_server(reader, within=30)
        finally:
            writer.close()
        assert answered is not None
        assert answered.startswith(b"HTTP/1.1 202"), answered[:200]
