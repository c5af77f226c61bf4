"""The real `procore-hooks api` (uvicorn, JSON logs at DEBUG): a receive → admin flow leaves
only JSON lines, uvicorn's own included, and no secret in any of them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx

from app.runtime import Runtime
from app.settings import Settings
from app.webhooks.tokens import hook_authorization
from tests import payloads
from tests.conftest import ENCRYPTION_KEY
from tests.operator.test_metrics import free_port

SECRETS = {
    "WEBHOOK_AUTH_TOKENS": "webhook-secret-4f9a1c7e",
    "ADMIN_TOKEN": "admin-secret-8b2d6e0f",
    "PROCORE_CLIENT_SECRET": "client-secret-3c5e7a9b",
    "METRICS_TOKEN": "metrics-secret-1a2b3c4d",
    "ENCRYPTION_KEY": ENCRYPTION_KEY,
}


async def wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("the api did not start")


async def flow(base: str) -> list[str]:
    """What an operator and Procore do; returns the one-time values the service handed out."""
    handed_out: list[str] = []
    derive = Settings(_env_file=None, webhook_auth_tokens=SECRETS["WEBHOOK_AUTH_TOKENS"])
    token = hook_authorization(derive, 31)
    handed_out.append(token)
    hook = {"Authorization": token}
    admin = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        body = payloads.v2()
        assert (await client.post("/webhooks/procore", json=body, headers=hook)).status_code == 202
        assert (await client.post("/webhooks/procore", json=body, headers=hook)).status_code == 200
        wrong = {"Authorization": "not-the-token"}
        assert (await client.post("/webhooks/procore", json=body, headers=wrong)).status_code == 401
        assert (
            await client.post("/webhooks/procore", content=b"{", headers=hook)
        ).status_code == 400
        events = (await client.get("/admin/events", headers=admin)).json()["items"]
        [event] = events
        replay = await client.post(f"/admin/events/{event['id']}/replay", headers=admin)
        assert replay.status_code == 409  # still queued
        denied = await client.get("/admin/summary", headers={"Authorization": "Bearer guess"})
        assert denied.status_code == 401
        connect = await client.post("/admin/connect-links", json={"company_id": 31}, headers=admin)
        state = connect.json()["url"].split("state=")[1]
        handed_out.append(state)
        opened = await client.get(f"/connect/procore?state={state}")
        assert opened.status_code == 302
        setup = (
            await client.post("/admin/setup-links", json={"company_id": 31}, headers=admin)
        ).json()
        handed_out.append(setup["embed_key"])
        signed = urlsplit(setup["url"])
        handed_out.append(signed.query.split("sig=")[1])
        assert (await client.get(f"{signed.path}?{signed.query}")).status_code == 200
        embedded = await client.get(
            "/embedded", params={"company_id": 31, "project_id": 900, "key": setup["embed_key"]}
        )
        assert embedded.status_code == 200
        metrics = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"}
        )
        assert metrics.status_code == 200
    return handed_out


async def test_logs_are_json_and_carry_no_secret(settings: Settings, db: Runtime) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "PROCORE_CLIENT_ID": "logs-test-client",
        "PUBLIC_BASE_URL": base,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_until_up(base)
        handed_out = await flow(base)
    finally:
        api.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(api.communicate, timeout=30)
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert api.returncode in (0, -signal.SIGTERM), err[-2000:]
    assert "Application shutdown complete." in err

    lines = [line for line in (out + err).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    events = {record.get("event") for record in records}
    assert "Application startup complete." in events  # uvicorn's own, as JSON
    assert "admin.action" in events
    assert "admin.unauthorized" in events
    assert any(r.get("logger") == "uvicorn.error" for r in records)

    everything = out + err
    for name, secret in SECRETS.items():
        assert secret not in everything, name
    for value in handed_out:  # connect state, embed key, link signature
        assert value not in everything


async def test_plain_uvicorn_access_logs_carry_no_secret(settings: Settings, db: Runtime) -> None:
    """Started as `uvicorn app.main:app` (uvicorn's own logging, access log on), the request
    lines it logs have their signed and single-use query values redacted."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "PROCORE_CLIENT_ID": "logs-test-client",
        "PUBLIC_BASE_URL": base,
        "LOG_LEVEL": "INFO",
    }
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_until_up(base)
        handed_out = await flow(base)
        async with httpx.AsyncClient(base_url=base) as client:
            await client.get(
                "/connect/procore/callback", params={"state": "s3cr3t-state", "code": "s3cr3t-code"}
            )
        handed_out += ["s3cr3t-state", "s3cr3t-code"]
    finally:
        api.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(api.communicate, timeout=30)
    everything = out + err
    assert '"GET /setup?company=31&expires=' in everything  # the access log is on
    assert "sig=[redacted]" in everything
    for name, secret in SECRETS.items():
        assert secret not in everything, name
    for value in handed_out:
        assert value not in everything
