"""The Procore client's wire (app.procore.transport): httpx's requests, answers and errors over
aiohttp, against real sockets on loopback."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.procore.answers import OutcomeKind
from app.procore.calls import CallRecord
from app.procore.transport import AiohttpTransport
from app.runtime import USER_AGENT, create_http_client, open_runtime
from app.settings import Settings

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A raw HTTP/1.1 server on a free loopback port: `handler` reads and writes the bytes."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for task in list(tasks):
            task.cancel()
        srv.close()
        await srv.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length) if length else b""


def answer(status: int, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = create_http_client()
    yield http
    await http.aclose()


async def test_requests_carry_exactly_httpx_headers_and_body(client: httpx.AsyncClient) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(201, b'{"ok":true}', "Content-Type: application/json", "X-A: 1"))
            await writer.drain()

    async with server(handler) as base:
        got = await client.post(
            f"{base}/rest/v1.0/things?x=1",
            content=b'{"a":1}',
            headers={"Content-Type": "application/json", "Procore-Company-Id": "31"},
        )
        again = await client.get(f"{base}/rest/v1.0/me")

    assert (got.status_code, got.json(), got.headers["x-a"]) == (201, {"ok": True}, "1")
    assert again.status_code == 201
    head, body = seen[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /rest/v1.0/things?x=1 HTTP/1.1"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:-2])}
    assert headers["user-agent"] == USER_AGENT
    assert headers["procore-company-id"] == "31"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == "7"
    assert body == b'{"a":1}'
    # Both requests went over one kept-alive connection.
    assert len(seen) == 2


async def test_a_compressed_answer_is_decoded_and_redirects_are_not_followed(
    client: httpx.AsyncClient,
) -> None:
    packed = gzip.compress(b'{"id": 7}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        if b"/moved" in head.split(b"\r\n")[0]:
            writer.write(answer(302, b"", "Location: /elsewhere"))
        else:
            writer.write(answer(200, packed, "Content-Encoding: gzip"))
        await writer.drain()

    async with server(handler) as base:
        got = await client.get(f"{base}/x")
        moved = await client.get(f"{base}/moved")

    assert got.json() == {"id": 7}
    assert (moved.status_code, moved.headers["location"]) == (302, "/elsewhere")


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused

    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_no_answer_in_time_is_a_read_timeout(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(handler) as base:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{base}/", timeout=httpx.Timeout(0.2, connect=1.0))


async def test_a_closed_or_cut_answer_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()

    async def garbles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    for handler in (closes, cuts, garbles):
        async with server(handler) as base:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"{base}/")


async def test_an_answer_over_the_bound_is_refused() -> None:
    client = httpx.AsyncClient(
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=4), max_answer_bytes=1000)
    )

    async def declared(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"x" * 1001))
        await writer.drain()

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"190\r\n" + b"x" * 400 + b"\r\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def fits(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"x" * 1000))
        await writer.drain()

    try:
        for handler in (declared, chunked):
            async with server(handler) as base:
                with pytest.raises(httpx.RemoteProtocolError, match="over 1000"):
                    await client.get(f"{base}/")
        async with server(fits) as base:
            assert len((await client.get(f"{base}/")).content) == 1000
    finally:
        await client.aclose()


def header_map(head: bytes) -> dict[str, str]:
    lines = head.decode().split("\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


async def test_procore_calls_go_over_the_wire_with_the_clients_headers(
    pipeline_settings: Callable[..., Settings],
) -> None:
    """The Procore client's own path (no httpx client layers): the token, the company
    (FACTS.md §4: `Procore-Company-Id` on every company-scoped call), the User-Agent; the
    answer decoded; the call audited; failures classified as from httpx."""
    seen: list[bytes] = []
    packed = gzip.compress(b'{"id": 5150}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        seen.append(head)
        if b"/slow" in head.split(b"\r\n")[0]:
            await asyncio.sleep(5)
        writer.write(answer(200, packed, "Content-Encoding: gzip", "X-Rate-Limit-Remaining: 41"))
        await writer.drain()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = sock.getsockname()[1]

    async with server(handler) as base:
        runtime = open_runtime(
            pipeline_settings(procore_api_base=base, procore_timeout_seconds=0.3), name="t"
        )
        calls: list[CallRecord] = []
        try:
            got = await runtime.procore.get_as(
                "/rest/v1.0/projects/900/rfis/5150", token="tok", company_id=31, calls=calls
            )
            slow = await runtime.procore.get_as("/slow", token="tok", company_id=31, calls=calls)
        finally:
            await runtime.close()
        runtime = open_runtime(
            pipeline_settings(procore_api_base=f"http://127.0.0.1:{refused}"), name="t"
        )
        try:
            down = await runtime.procore.get_as("/x", token="tok", company_id=None, calls=calls)
        finally:
            await runtime.close()

    assert (got.outcome.kind, got.json()) == (OutcomeKind.OK, {"id": 5150})
    assert got.headers is not None
    assert got.headers["x-rate-limit-remaining"] == "41"
    headers = header_map(seen[0])
    assert seen[0].startswith(b"GET /rest/v1.0/projects/900/rfis/5150 HTTP/1.1\r\n")
    expected: dict[str, Any] = {
        "authorization": "Bearer tok",
        "procore-company-id": "31",
        "user-agent": USER_AGENT,
        "accept": "application/json",
        "accept-encoding": "gzip, deflate",
    }
    assert {k: headers.get(k) for k in expected} == expected
    assert (slow.outcome.kind, slow.outcome.status) == (OutcomeKind.TRANSIENT, None)
    assert down.outcome.kind is OutcomeKind.TRANSIENT
    assert [(c.path, c.status, c.error) for c in calls] == [
        ("/rest/v1.0/projects/900/rfis/5150", 200, None),
        ("/slow", None, "timeout"),
        ("/x", None, "connection error: ConnectError"),
    ]


def self_signed(directory: Path) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1 with a certificate nobody signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def test_https_answers_are_verified(client: httpx.AsyncClient, tmp_path: Path) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(200, b"{}"))
        await writer.drain()

    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=self_signed(tmp_path))
    port = srv.sockets[0].getsockname()[1]
    wire = AiohttpTransport(limits=httpx.Limits(max_connections=4))
    try:
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await client.get(f"https://127.0.0.1:{port}/")
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await wire.exchange(
                "GET",
                f"https://127.0.0.1:{port}/",
                headers=[],
                content=None,
                limits=httpx.Timeout(5.0),
            )
    finally:
        await wire.aclose()
        srv.close()
        await srv.wait_closed()
