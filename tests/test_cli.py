"""The `procore-hooks` command as an operator runs it (a real subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import asyncpg
import httpx

from app.health import heartbeat
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import create_database, drop_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APP_ENV": "development", **env}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


async def test_worker_check_follows_this_hosts_heartbeat(settings: Settings, db: Runtime) -> None:
    env = {"DATABASE_URL": settings.database_url}
    missing = await asyncio.to_thread(run_cli, "worker", "--check", **env)
    assert missing.returncode == 1
    assert "no heartbeat from this host" in missing.stderr

    async with db.sessions() as session, session.begin():
        await heartbeat.beat(session, heartbeat.WorkerIdentity(), jobs_done=0)
    alive = await asyncio.to_thread(run_cli, "worker", "--check", **env)
    assert alive.returncode == 0, alive.stderr


async def test_migrate_brings_a_new_database_to_head() -> None:
    name = f"ph_cli_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        result = await asyncio.to_thread(run_cli, "migrate", DATABASE_URL=url)
        assert result.returncode == 0, result.stderr
        assert "database at head" in result.stdout
    finally:
        await drop_database(name)


async def test_migrate_wait_holds_until_the_database_is_at_head(settings: Settings) -> None:
    """What the Kubernetes init containers run before the api or a worker starts."""
    at_head = await asyncio.to_thread(
        run_cli, "migrate", "--wait", "--timeout", "5", DATABASE_URL=settings.database_url
    )
    assert at_head.returncode == 0, at_head.stderr
    assert "database at head" in at_head.stdout

    name = f"ph_cli_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        empty = await asyncio.to_thread(
            run_cli, "migrate", "--wait", "--timeout", "1", DATABASE_URL=url
        )
        assert empty.returncode == 1
        assert "database at no revision, not" in empty.stderr
        # It migrated nothing.
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            assert await conn.fetchval("SELECT to_regclass('alembic_version')") is None
        finally:
            await conn.close()
    finally:
        await drop_database(name)


def test_production_refuses_to_start_naming_the_variable() -> None:
    result = run_cli(
        "migrate",
        APP_ENV="production",
        WEBHOOK_AUTH_TOKENS="change-me",
        ADMIN_TOKEN="",
        ENCRYPTION_KEY="",
        PROCORE_CLIENT_ID="",
        PROCORE_CLIENT_SECRET="",
    )
    assert result.returncode == 2
    assert "WEBHOOK_AUTH_TOKENS holds a placeholder value" in result.stderr
    assert "PROCORE_CLIENT_ID is not set" in result.stderr


def _run_dev(settings: Settings, **env: str) -> tuple[str, int]:
    """`procore-hooks dev` until its api answers and its worker has started, then Ctrl-C."""
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("LOG_FORMAT")
    }
    environment.update(
        APP_ENV="development",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        QUEUE_NAME=f"{settings.queue_name}:dev",
        # Real Procore credentials, so no simulator or demo runs; nothing calls this address.
        PROCORE_CLIENT_ID="dev-logs-test",
        PROCORE_CLIENT_SECRET="dev-logs-test-secret",
        PROCORE_API_BASE="http://127.0.0.1:9",
        PROCORE_LOGIN_BASE="http://127.0.0.1:9",
        WORKER_METRICS_PORT="0",
        **env,
    )
    dev = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dev", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group: whatever happens here, none of its children outlives the
        # test (a worker left running would tend this suite's database under later tests).
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(dev.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not (any("worker.started" in line for line in lines) and _answers(port)):
            assert dev.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            # dev gives its children 25 s together, then kills them.
            code = dev.wait(timeout=90)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dev.pid, signal.SIGKILL)
            reader.join(10)
            if dev.stdout is not None:
                dev.stdout.close()
    return "".join(lines), code


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _json_lines(output: str) -> list[dict[str, object]]:
    found = []
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


async def test_dev_logs_for_people_unless_log_format_is_set(
    settings: Settings, db: Runtime
) -> None:
    people, code = await asyncio.to_thread(_run_dev, settings)
    assert code == 0, people
    started = [line for line in people.splitlines() if "worker.started" in line]
    assert started, people
    assert not _json_lines(people), "dev printed JSON lines by default"
    assert "Uvicorn running on" in people

    machines, code = await asyncio.to_thread(_run_dev, settings, LOG_FORMAT="json")
    assert code == 0, machines
    events = {record.get("event") for record in _json_lines(machines)}
    assert "worker.started" in events
