"""Each company's hook carries its own token: a token of one company cannot speak for another.

Procore sends the hook's `destination_headers.Authorization` verbatim and signs nothing
(FACTS.md §2, `plan_your_app/webhooks_api.md`); listings mask it to its last 5 characters
(FACTS.md §9). Procore's own ERP integrations keep a token per company's hook
(`erp_integration/erp_technical_guide.md`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from app.main import create_app
from app.models import Event
from app.runtime import Runtime
from app.settings import Settings
from app.webhooks.tokens import PREFIX, WebhookTokens, hook_authorization
from tests import payloads
from tests.conftest import WEBHOOK_SECRET, WEBHOOK_SECRET_OLD, make_settings

URL = "/webhooks/procore"


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """No shared token: only each company's own token is accepted (the default)."""
    return make_settings(settings.database_url, webhook_shared_tokens="")


@pytest.fixture
async def strict_client(strict: Settings, db: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(strict)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def post(client: httpx.AsyncClient, body: object, token: str) -> httpx.Response:
    return await client.post(
        URL,
        content=json.dumps(body).encode(),
        headers={"Authorization": token, "Content-Type": "application/json"},
    )


async def stored(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Event))).scalar_one()


def test_tokens_differ_per_company_and_secret_in_the_last_five_characters(
    strict: Settings,
) -> None:
    rotated = make_settings(strict.database_url, webhook_auth_tokens="another-secret")
    tokens = [hook_authorization(strict, c) for c in range(1, 200)]
    tokens += [hook_authorization(rotated, c) for c in range(1, 200)]
    assert all(t.startswith(f"{PREFIX}.") for t in tokens)
    assert hook_authorization(strict, 31).split(".")[1] == "31"
    # Procore shows only the last 5 characters back: they must tell the hooks apart.
    assert len({t[-5:] for t in tokens}) == len(tokens)
    assert WEBHOOK_SECRET not in hook_authorization(strict, 31)


async def test_a_company_token_is_accepted_for_its_company(
    strict_client: httpx.AsyncClient, strict: Settings, db: Runtime
) -> None:
    response = await post(strict_client, payloads.v2(company_id=31), hook_authorization(strict, 31))
    assert response.status_code == 202
    v4 = payloads.v4(company_id="32")
    response = await post(strict_client, v4, hook_authorization(strict, 32))
    assert response.status_code == 202
    assert await stored(db) == 2


async def test_a_token_of_one_company_cannot_deliver_for_another(
    strict_client: httpx.AsyncClient, strict: Settings, db: Runtime
) -> None:
    body = payloads.v2(company_id=32, event_type="delete")
    response = await post(strict_client, body, hook_authorization(strict, 31))
    assert response.status_code == 403
    assert response.json()["field"] == "company_id"
    assert "another company" in response.json()["detail"]
    assert await stored(db) == 0


async def test_tokens_of_the_previous_secret_are_accepted_during_rotation(
    strict_client: httpx.AsyncClient, strict: Settings, db: Runtime
) -> None:
    previous = make_settings(strict.database_url, webhook_auth_tokens=WEBHOOK_SECRET_OLD)
    response = await post(strict_client, payloads.v2(), hook_authorization(previous, 31))
    assert response.status_code == 202
    dropped = make_settings(strict.database_url, webhook_auth_tokens="a-dropped-secret")
    response = await post(strict_client, payloads.v2(), hook_authorization(dropped, 31))
    assert response.status_code == 401
    assert await stored(db) == 1


@pytest.mark.parametrize(
    "token",
    [
        "phk1.31.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "phk1.31.",
        "phk1..x",
        "phk1.031.x",
        f"phk1.{2**64}.x",
        "phk2.31.x",
        "test-webhook-token-1",  # a shared token, while none is configured
        WEBHOOK_SECRET,  # the secret itself is not a token
    ],
)
async def test_forged_or_malformed_tokens_are_refused_before_the_body_is_read(
    strict_client: httpx.AsyncClient, db: Runtime, token: str
) -> None:
    response = await post(strict_client, payloads.v2(), token)
    assert response.status_code == 401
    assert await stored(db) == 0


async def test_a_shared_token_is_opt_in_and_speaks_for_any_company(settings: Settings) -> None:
    shared = make_settings(settings.database_url, webhook_shared_tokens="hand-made-hook-token")
    tokens = WebhookTokens(shared)
    presented = tokens.verify(b"hand-made-hook-token")
    assert presented is not None
    assert presented.allows(31)
    assert presented.allows(32)
    own = tokens.verify(hook_authorization(shared, 31).encode())
    assert own is not None
    assert own.allows(31)
    assert not own.allows(32)
    assert (
        WebhookTokens(make_settings(settings.database_url, webhook_shared_tokens="")).verify(
            b"hand-made-hook-token"
        )
        is None
    )
