"""Every /admin endpoint refuses a missing or wrong bearer token; rotation keeps the old one."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import make_settings
from tests.factories import audit_rows


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented /admin operation, with its path parameters filled in."""
    found: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/admin"):
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            found.extend((method.upper(), concrete) for method in operations)
    return sorted(found)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dGVzdC1hZG1pbi10b2tlbg=="},
        {"Authorization": "Bearer "},
        {"Authorization": "test-admin-token"},
    ],
    ids=["missing", "wrong", "basic-scheme", "empty", "no-scheme"],
)
async def test_every_admin_endpoint_refuses_without_a_valid_token(
    app: FastAPI, client: httpx.AsyncClient, db: Runtime, headers: dict[str, str]
) -> None:
    routes = admin_routes(app)
    assert len(routes) >= 14, routes
    for method, path in routes:
        response = await client.request(method, path, headers=headers, json={"reason": "x"})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing or invalid admin bearer token"}
    assert await audit_rows(db) == []


async def test_rotation_accepts_the_old_and_the_new_token(settings: Settings, db: Runtime) -> None:
    rotated = make_settings(settings.database_url, admin_token="new-admin-token,old-admin-token")
    app = create_app(rotated)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for token, expected in (
                ("new-admin-token", 200),
                ("old-admin-token", 200),
                ("test-admin-token", 401),
                ("new-admin-token-and-more", 401),
            ):
                response = await client.get(
                    "/admin/summary", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == expected, token


async def test_no_admin_token_configured_refuses_everyone(settings: Settings, db: Runtime) -> None:
    app = create_app(make_settings(settings.database_url, admin_token=""))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/admin/summary", headers={"Authorization": "Bearer "})
            assert response.status_code == 401


async def test_admin_api_is_documented_with_models_and_bearer_security(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["AdminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the ADMIN_TOKEN values (a list, so a token can be rotated)",
    }
    paths = schema["paths"]
    expected = {
        ("get", "/admin/gates"): "GatePage",
        ("get", "/admin/gates/{gate_id}"): "GateDetail",
        ("post", "/admin/companies/{company_id}/confirm-install"): "ProbeOut",
        ("post", "/admin/gates/{gate_id}/park"): "GateOut",
        ("post", "/admin/gates/{gate_id}/unpark"): "GateOut",
        ("get", "/admin/events"): "EventPage",
        ("get", "/admin/events/{event_id}"): "EventDetail",
        ("post", "/admin/events/{event_id}/replay"): "ReplayOneOut",
        ("post", "/admin/events/replay"): "ReplayOut",
        ("get", "/admin/summary"): "SummaryOut",
        ("get", "/admin/resources"): "ResourcePage",
        ("post", "/admin/connect-links"): "ConnectLinkOut",
        ("post", "/admin/setup-links"): "SetupLinkOut",
        ("get", "/admin/actions"): "ActionPage",
    }
    for (method, path), model in expected.items():
        operation = paths[path][method]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}, (method, path)
        assert operation["security"] == [{"AdminToken": []}], (method, path)
        assert "401" in operation["responses"], (method, path)
