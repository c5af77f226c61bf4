"""Admin bodies that are not UTF-8 or not JSON are refused with a 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import add_gate


@pytest.mark.parametrize(
    "body",
    # The last: a lone surrogate, valid as a JSON escape, invalid as UTF-8 when echoed back.
    [b"\xff\xfe\x00", b'{"reason": "\xff"}', b"{not json", b"[]", b'{"reason": "\\ud800"}'],
)
async def test_park_with_a_bad_body_is_refused(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], body: bytes
) -> None:
    gate = await add_gate(db)
    response = await client.post(
        f"/admin/gates/{gate.id}/park",
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.json()["detail"]
