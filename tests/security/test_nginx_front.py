"""The production front, deploy/nginx/nginx.conf.template, on Debian's real nginx in front of
the api (`procore-hooks api`): slow clients are held and cut off by nginx, oversized bodies
refused unread, webhooks go through, and the access log never names a query string.

nginx's directives (nginx.org/en/docs/http/ngx_http_core_module.html): client_header_timeout
closes a connection whose request headers are not read in time; client_max_body_size answers
413 from the declared length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.runtime import Runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import WEBHOOK_TOKEN
from tests.security.api_process import api_process, closed_by_server, free_port

TEMPLATE = Path(__file__).parents[2] / "deploy" / "nginx" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
VARIABLES = (
    "PROCORE_HOOKS_LISTEN",
    "PROCORE_HOOKS_UPSTREAM",
    "PROCORE_HOOKS_RUNTIME",
    "PROCORE_HOOKS_ACCESS_LOG",
)

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() and not os.environ.get("CI"),
    reason="nginx is not installed (apt-get install nginx; .ci/run installs it)",
)


def render(values: dict[str, str]) -> str:
    """As `envsubst` with the variable list: only these names are replaced."""
    assert set(values) == set(VARIABLES)
    return re.sub(
        r"\$\{(PROCORE_HOOKS_[A-Z_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text()
    )


@contextlib.asynccontextmanager
async def nginx_in_front(upstream: str, tmp: Path) -> AsyncIterator[tuple[str, Path]]:
    port = free_port()
    runtime = tmp / "nginx"
    runtime.mkdir()
    log = tmp / "access.log"
    config = tmp / "nginx.conf"
    config.write_text(
        render(
            {
                "PROCORE_HOOKS_LISTEN": f"127.0.0.1:{port}",
                "PROCORE_HOOKS_UPSTREAM": upstream.removeprefix("http://"),
                "PROCORE_HOOKS_RUNTIME": str(runtime),
                "PROCORE_HOOKS_ACCESS_LOG": str(log),
            }
        )
    )
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(config), "-p", str(runtime), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(runtime), "-e", "stderr", "-g", "daemon off;"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.get(f"{base}/health/live")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        await asyncio.to_thread(process.communicate, timeout=30)


def test_the_rendered_configuration_names_every_variable() -> None:
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text()))
    assert placeholders == set(VARIABLES)


async def test_nginx_holds_slow_clients_and_passes_webhooks(
    settings: Settings, db: Runtime, tmp_path: Path
) -> None:
    async with api_process(settings) as api, nginx_in_front(api, tmp_path) as (base, log):
        port = int(base.rsplit(":", 1)[1])
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"POST /webhooks/procore HTTP/1.1\r\nHost: x\r\nAuthoriz")
        await half[1].drain()

        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            delivered = await client.post(
                "/webhooks/procore",
                content=json.dumps(payloads.v2()).encode(),
                headers={"Authorization": WEBHOOK_TOKEN, "Content-Type": "application/json"},
            )
            assert delivered.status_code == 202, delivered.text
            # A 20 MiB body, declared: refused before a byte of it is read.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /admin/events/replay HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 20971520\r\n\r\n[{},"
            )
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 413")
            writer.close()
            secret = await client.get("/setup", params={"company": "31", "sig": "s3cr3t"})
            assert secret.status_code in (200, 403)

        # client_header_timeout (10 s): nginx closes it (generous bound).
        assert await closed_by_server(half[0], within=30) is not None
        half[1].close()
    logged = log.read_text()
    assert "POST /webhooks/procore" in logged
    assert "GET /setup" in logged
    assert "s3cr3t" not in logged
    assert "sig=" not in logged
    async with db.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM events"))).scalar() == 1
