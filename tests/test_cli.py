"""The `procore-hooks` command as an operator runs it (a real subprocess)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from app.health import heartbeat
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import create_database, drop_database


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
