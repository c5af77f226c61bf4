"""Worker heartbeats in Postgres: /health and `procore-hooks worker --check` read them."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import WorkerHeartbeat


@dataclass(slots=True)
class WorkerIdentity:
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def worker_id(self) -> str:
        return f"{self.hostname}:{self.pid}"


async def beat(session: AsyncSession, worker: WorkerIdentity, jobs_done: int) -> None:
    stmt = insert(WorkerHeartbeat).values(
        worker_id=worker.worker_id,
        hostname=worker.hostname,
        pid=worker.pid,
        started_at=worker.started_at,
        seen_at=func.now(),
        jobs_done=jobs_done,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.worker_id],
            set_={"seen_at": func.now(), "jobs_done": stmt.excluded.jobs_done},
        )
    )


async def forget(session: AsyncSession, worker: WorkerIdentity) -> None:
    await session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker.worker_id)
    )


async def newest_beat_age(session: AsyncSession, hostname: str | None = None) -> float | None:
    """Seconds since the freshest heartbeat (of one host, if given); None if there is none."""
    query = select(func.extract("epoch", func.now() - func.max(WorkerHeartbeat.seen_at)))
    if hostname is not None:
        query = query.where(WorkerHeartbeat.hostname == hostname)
    age = (await session.execute(query)).scalar_one_or_none()
    return None if age is None else float(age)
