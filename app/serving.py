"""How `procore-hooks api` serves HTTP: uvicorn's httptools protocol, with bounds on headers.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and
sends its request line and headers a byte at a time (or never): each such client holds a
connection for ever, and a few thousand of them hold the api. So a request's headers must
arrive whole within HEADER_READ_TIMEOUT_SECONDS and within API_MAX_HEADER_BYTES, else the
connection is closed. Bodies have their own deadline (app.bodies), connections their cap
(API_MAX_CONNECTIONS, uvicorn's limit_concurrency); in production a front such as the nginx
configuration in deploy/nginx holds slow clients before they reach the api at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import get_settings

PROTOCOL_PATH = "app.serving:BoundedHttpToolsProtocol"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; each request's headers within a deadline and a size."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._header_timeout = settings.header_read_timeout_seconds
        self._header_limit = settings.api_max_header_bytes
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        in_headers = self._header_deadline is not None
        super().data_received(data)
        # Still in the headers after this chunk: all of it was headers (a chunk that also
        # completed them may carry the body: that is not counted).
        if in_headers and self._header_deadline is not None:
            self._header_bytes += len(data)
            if self._header_bytes > self._header_limit:
                self._close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # the next request of a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_done()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self._header_timeout, self._close)

    def _headers_done(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _close(self) -> None:
        self._headers_done()
        if not self.transport.is_closing():
            self.transport.close()
