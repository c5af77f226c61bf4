"""Opening a gate by hand asks for a hooks sync in the same transaction; a worker syncing that
company at the same moment can deadlock with it (found by schemathesis on a running
deployment: a 500). Postgres cancels one of the two: the admin API runs it again."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from app.admin import service
from app.models import GateScope
from app.runtime import Runtime
from tests.conftest import ADMIN_TOKEN
from tests.test_webhooks import park

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_a_deadlocked_unpark_is_run_again(
    client: httpx.AsyncClient, db: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_id = await park(db, GateScope.COMPANY, 31, None)
    real = service.operate_gate
    tries = 0

    async def deadlocked_once(*args: object, **kwargs: object) -> object:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise DBAPIError("INSERT INTO company_hooks", {}, asyncpg.DeadlockDetectedError(""))
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "operate_gate", deadlocked_once)
    answer = await client.post(
        f"/admin/gates/{gate_id}/unpark", json={"reason": "installed"}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "open"
    assert tries == 2
