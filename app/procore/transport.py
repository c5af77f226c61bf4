"""httpx's interface over aiohttp's connection pool and HTTP parser: the transport of the
Procore client (`Runtime.http`).

Every caller keeps httpx (requests, responses, timeouts, its errors); only the wire changes.
httpx's own transport (httpcore over anyio, h11 in pure Python) costs a worker about 1.8 ms of
CPU per call with 16 connections open (it asks every pooled socket whether it is readable on
each request), aiohttp's about 0.15 ms, and the worker's throughput is bound by that CPU
(`bench/pipeline.py`).

What aiohttp raises is raised as httpx's own errors, so callers classify failures as before:
timeouts as `httpx.TimeoutException` (connect, pool and read), the rest as
`httpx.TransportError` (connection refused or reset, an answer cut short or malformed).
Redirects, cookies, proxies from the environment and decompression stay httpx's (the client
above does them); answers are read whole, up to `MAX_ANSWER_BYTES`.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
import httpx

# An answer larger than this is refused as a protocol error (Procore's largest pages of
# records are a few megabytes).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# A header line (h11 allows 16 KiB for all of them; a `Link` header can be long).
MAX_HEADER_BYTES = 16 * 1024
_CHUNK = 64 * 1024
# Headers aiohttp would add when the caller has not: the caller (httpx) always has.
_OWN_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# What `exchange` can decode (aiohttp's own decoders).
ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True, slots=True)
class Exchange:
    status: int
    headers: httpx.Headers
    body: bytes


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per transport, opened on first use in the running event loop."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._limits = limits
        self._ssl = ssl_context
        self._max_answer_bytes = max_answer_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        keepalive = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=15.0 if keepalive is None else keepalive,
            # Verified with httpx's certificates (certifi), made once per process and only
            # when an https URL is first called (below).
            ssl=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # httpx above keeps the cookies, follows (or not) redirects, picks proxies from the
            # environment (through transports of its own) and decodes the body.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        with _as_httpx_errors(request.method, str(request.url), request):
            status, reason, headers, content = await self._exchange(
                request.method,
                str(request.url),
                request.headers.multi_items(),
                body or None,
                _timeout(request.extensions.get("timeout", {})),
                decode=False,
            )
        return httpx.Response(
            status,
            headers=headers,
            content=content,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason.encode("latin-1", "replace"),
            },
        )

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]],
        content: bytes | None,
        limits: httpx.Timeout,
    ) -> Exchange:
        """One request with exactly `headers`, within `limits`, its answer decoded: for a
        client that needs none of httpx's client layers (URL merging, cookies, redirects,
        hooks). Errors are httpx's, as from `handle_async_request`."""
        with _as_httpx_errors(method, url):
            status, _, raw, body = await self._exchange(
                method, url, headers, content, _timeout(limits.as_dict()), decode=True
            )
        return Exchange(status, httpx.Headers(raw), body)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        content: bytes | None,
        limits: aiohttp.ClientTimeout,
        *,
        decode: bool,
    ) -> tuple[int, str, list[tuple[bytes, bytes]], bytes]:
        session = self._session if self._session is not None else self._open()
        tls: ssl.SSLContext | bool = True
        if url.startswith("https:"):
            tls = self._ssl or _default_ssl_context()
        async with session.request(
            method,
            url,
            headers=headers,
            data=content,
            allow_redirects=False,
            timeout=limits,
            auto_decompress=decode,
            # Every header is the caller's: aiohttp adds none of its own.
            skip_auto_headers=_OWN_HEADERS,
            ssl=tls,
        ) as answer:
            body = await self._read(answer)
            return answer.status, answer.reason or "", list(answer.raw_headers), body

    async def _read(self, answer: aiohttp.ClientResponse) -> bytes:
        declared = answer.content_length
        if declared is not None and declared > self._max_answer_bytes:
            raise _TooLarge(f"answer of {declared} bytes is over {self._max_answer_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self._max_answer_bytes:
                raise _TooLarge(f"answer over {self._max_answer_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _timeout(timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's: `connect` covers waiting for a pooled connection and
    opening one (httpx's pool + connect), `sock_read` each read (httpx's read)."""
    return _client_timeout(timeouts.get("connect"), timeouts.get("pool"), timeouts.get("read"))


@functools.lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, pool: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


class _TooLarge(Exception):
    pass


@contextmanager
def _as_httpx_errors(method: str, url: str, sent: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp's errors as httpx's, naming the request (built only when something failed)."""
    try:
        yield
    except (_TooLarge, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        error = _httpx_error(exc)
        message = str(exc) or type(exc).__name__
        raise error(message, request=sent or httpx.Request(method, url)) from exc


def _httpx_error(exc: Exception) -> type[httpx.TransportError]:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # opening, or waiting for the pool
        return httpx.ConnectTimeout
    if isinstance(exc, TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError
    if isinstance(
        exc,
        _TooLarge
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return httpx.ReadError
    return httpx.TransportError
