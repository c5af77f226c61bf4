"""The api as production runs it (`procore-hooks api`, a real process on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx

from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY, WEBHOOK_SECRET, WEBHOOK_TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def api_process(settings: Settings, **env: str) -> AsyncIterator[str]:
    """`procore-hooks api` against the suite's database; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "WEBHOOK_AUTH_TOKENS": WEBHOOK_SECRET,
        "WEBHOOK_SHARED_TOKENS": WEBHOOK_TOKEN,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PROCORE_CLIENT_ID": "slow-clients-test",
        "PROCORE_API_BASE": "http://127.0.0.1:9",
        "PROCORE_LOGIN_BASE": "http://127.0.0.1:9",
        "PUBLIC_BASE_URL": base,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await _wait_until_up(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.communicate, timeout=30)


async def _wait_until_up(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"the api exited: {process.stderr.read() if process.stderr else ''}"
                )
            try:
                if (await client.get(f"{base}/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("the api did not start")


async def closed_by_server(reader: asyncio.StreamReader, *, within: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it kept it open."""
    received = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(4096):
                received += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        # Reset, or a broken pipe left on the stream by a write the server refused: closed.
        pass
    return received
