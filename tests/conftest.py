"""Shared fixtures: a fresh Postgres database built by the Alembic migrations, a private Redis
namespace, and the api app. Nothing here touches data the suite did not create."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from sqlalchemy import text

from app import migrate
from app.main import create_app
from app.models import Base
from app.queue import deserialize_job, serialize_job
from app.runtime import Runtime, open_runtime
from app.settings import Settings

# The simulator, settings and a runtime pointed at it, for every folder (tests.harness).
pytest_plugins = ["tests.harness"]

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN_DSN.rsplit("/", 1)[0]
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# CI runs the same property examples every time (a found counterexample is a bug to keep, not
# noise that comes and goes); locally hypothesis explores freely.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

RUN_ID = f"ph-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

# Shared webhook tokens (WEBHOOK_SHARED_TOKENS: accepted for any company), which most tests
# send; the per-company tokens are derived from the secrets (app.webhooks.tokens).
WEBHOOK_TOKEN = "test-webhook-token-1"
WEBHOOK_TOKEN_OLD = "test-webhook-token-0"
# 32+ characters, as production wants them (app.settings).
WEBHOOK_SECRET = "test-webhook-secret-1-4d9b2e7a0c"
WEBHOOK_SECRET_OLD = "test-webhook-secret-0-8f3a6c1e5b"
ADMIN_TOKEN = "test-admin-token-5f0c1e9a7b3d2468"
# A valid Fernet key (32 url-safe base64 bytes), for tests only.
ENCRYPTION_KEY = "7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o="
CLIENT_ID = "procore-hooks-test-client"


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{PG_BASE.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "development",
        "database_url": database_url,
        "database_pool_size": 5,
        "redis_url": REDIS_BASE,
        "queue_name": f"{RUN_ID}:queue",
        "webhook_auth_tokens": f"{WEBHOOK_SECRET},{WEBHOOK_SECRET_OLD}",
        "webhook_shared_tokens": f"{WEBHOOK_TOKEN},{WEBHOOK_TOKEN_OLD}",
        "admin_token": ADMIN_TOKEN,
        "encryption_key": ENCRYPTION_KEY,
        "procore_client_id": CLIENT_ID,
        "procore_client_secret": "test-client-secret",
        "log_format": "console",
        "log_level": "WARNING",
        "worker_metrics_port": 0,
        # A test process starts many apps; freezing its heap would keep every test's garbage.
        "api_gc_freeze": False,
    }
    if overrides.get("app_env") == "production":
        values.update(PRODUCTION)
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


# What production wants beyond the suite's defaults (app.settings refuses shared tokens this
# short, missing signing keys and a plain-http public URL there).
PRODUCTION: dict[str, object] = {
    "webhook_shared_tokens": "",
    "setup_link_keys": "test-setup-link-key-7c1e5a9f3b2d8e40",
    "embed_keys": "test-embed-key-value-2f8a4c6e0b9d1e73",
    "public_base_url": "https://procore-hooks.test",
}


@pytest.fixture(scope="session")
def database_name() -> str:
    return f"{RUN_ID.replace('-', '_')}"


@pytest.fixture(scope="session")
async def database_url(database_name: str) -> AsyncIterator[str]:
    url = await create_database(database_name)
    await asyncio.to_thread(migrate.upgrade, url)
    yield url
    await drop_database(database_name)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = open_runtime(settings, name="procore-hooks-tests")
    yield rt
    await rt.close()


# Every table the models declare (the migrations build exactly these; a test checks it).
TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


@pytest.fixture
async def db(runtime: Runtime) -> Runtime:
    """A runtime whose database tables are empty at the start of the test."""
    async with runtime.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return runtime


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[ArqRedis]:
    """The suite's Redis namespace, emptied of this run's keys before each test."""
    client = ArqRedis.from_url(settings.redis_url)
    client.job_serializer = serialize_job
    client.job_deserializer = deserialize_job
    await _delete_run_keys(client)
    yield client
    await client.aclose()


async def _delete_run_keys(client: Redis) -> None:
    async for key in client.scan_iter(match=f"*{RUN_ID}*"):
        await client.delete(key)


@pytest.fixture(scope="session", autouse=True)
async def _cleanup_redis() -> AsyncIterator[None]:
    yield
    client = Redis.from_url(REDIS_BASE)
    await _delete_run_keys(client)
    await client.aclose()


@pytest.fixture
async def app(settings: Settings, db: Runtime) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
