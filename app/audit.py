"""The audit trail (`admin_actions`): who did what, written in the action's own transaction.

The actor is a short fingerprint of the admin token (`admin:1a2b3c4d`) or the CLI's
`cli:<user>@<host>`, never a token.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.logs import get_logger
from app.models import AdminAction

log = get_logger(__name__)

_ACTOR_WIDTH = 64


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:_ACTOR_WIDTH]


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AdminAction(actor=actor[:_ACTOR_WIDTH], action=action, target=target, detail=detail)
    )
    await session.flush()
    log.info("admin.action", actor=actor, action=action, target=target)
