"""Production mode: the API schema is for admins only, no docs pages; the worker metrics
port binds where WORKER_METRICS_HOST says."""

from __future__ import annotations

import socket

import httpx

from app.main import create_app
from app.metrics.exposition import start_worker_metrics
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import make_settings

ADMIN = "prod-admin-token-5b0c9e2f7a1d4c8b9e3f"
PRODUCTION = {
    "app_env": "production",
    "admin_token": ADMIN,
    "webhook_auth_tokens": "prod-webhook-secret-0a7d3e9c1b5f8e2d4c6a",
    "webhook_shared_tokens": "",
    "public_base_url": "https://hooks.procore-hooks.test",
    "procore_api_base": "https://api.procore.com",
    "procore_login_base": "https://login.procore.com",
    "setup_link_keys": "prod-setup-link-key-4e8a1c6f0b3d9e2a7c5b",
    "embed_keys": "prod-embed-key-value-9c3e7a1f5b0d2e8a4c6b",
}


async def test_production_serves_the_schema_to_admins_only_and_no_docs(
    settings: Settings, db: Runtime
) -> None:
    production = make_settings(settings.database_url, **PRODUCTION)
    app = create_app(production)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
                assert (await c.get(path)).status_code == 404, path
            assert (await c.get("/openapi.json")).status_code == 401
            guessed = await c.get("/openapi.json", headers={"Authorization": "Bearer guess"})
            assert guessed.status_code == 401
            schema = await c.get("/openapi.json", headers={"Authorization": f"Bearer {ADMIN}"})
            assert schema.status_code == 200
            assert "/webhooks/procore" in schema.json()["paths"]


async def test_development_serves_the_schema_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200


def test_worker_metrics_bind_loopback_by_default(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = make_settings(settings.database_url, worker_metrics_port=port)
    assert worker.worker_metrics_host == "127.0.0.1"
    server = start_worker_metrics(worker)
    assert server is not None
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.stop()
