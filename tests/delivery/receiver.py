"""A destination on a real loopback port that verifies every delivery with the Standard
Webhooks reference library (`standardwebhooks`), as a connector's receiving endpoint would.

It answers each POST with the next status of `script`, then with `status`; `down()` closes the
port (connections are refused) and `up()` opens the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    id: str
    timestamp: int
    signatures: tuple[str, ...]
    body: dict[str, Any]
    status: int  # what the receiver answered
    at: float  # time.time() of arrival

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body["data"]
        return data


class Destination:
    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = list(secrets)
        self.deliveries: list[Delivery] = []  # verified ones, in arrival order
        self.unverified: list[str] = []
        self.requests = 0
        self.script: deque[int] = deque()
        self.status = 200
        self.delay_s = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __aenter__(self) -> Destination:
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    def delivered(self) -> list[Delivery]:
        """Deliveries answered 2xx."""
        return [d for d in self.deliveries if 200 <= d.status < 300]

    async def wait_for(self, count: int, timeout_s: float = 60.0) -> list[Delivery]:
        """Until `count` deliveries were answered 2xx."""
        async with asyncio.timeout(timeout_s):
            while len(self.delivered()) < count:
                await asyncio.sleep(0.01)
        return self.delivered()

    def _verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return True
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while request_line := await reader.readline():
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                status = self.script.popleft() if self.script else self.status
                if not request_line.startswith(b"POST ") or not self._verify(body, headers):
                    self.unverified.append(headers.get("webhook-id", "?"))
                    status = 401
                else:
                    self.deliveries.append(
                        Delivery(
                            id=headers["webhook-id"],
                            timestamp=int(headers["webhook-timestamp"]),
                            signatures=tuple(headers["webhook-signature"].split(" ")),
                            body=orjson.loads(body),
                            status=status,
                            at=time.time(),
                        )
                    )
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
