"""(c) The naive stack: the receiver one writes first. Per request: validate into a pydantic
model, INSERT one ORM row, COMMIT, then `enqueue_job` one arq job; answer 202.

Run by bench/ingest.py as `uvicorn bench.naive_app:app` against the same Postgres database
and Redis as the service. Its pool has the service's default size (10 + 5 overflow), so the
comparison is about the design, not about a starved pool.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI, Header, Request, status
from sqlalchemy import BigInteger, DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.bare_app import ProcoreWebhook, check_authorization

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/procore_hooks_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
QUEUE_NAME = os.environ.get("BENCH_QUEUE_NAME", "bench:naive:queue")


class Base(DeclarativeBase):
    pass


class WebhookEvent(Base):
    __tablename__ = "naive_webhook_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ulid: Mapped[str] = mapped_column(String(32), unique=True)
    company_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_name: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=5)
Session = async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    app.state.queue = await create_pool(
        RedisSettings.from_dsn(REDIS_URL), default_queue_name=QUEUE_NAME
    )
    yield
    await app.state.queue.aclose()
    await engine.dispose()


app = FastAPI(title="bench: naive receiver", lifespan=lifespan)


@app.post("/webhooks/procore", status_code=status.HTTP_202_ACCEPTED)
async def receive(
    event: ProcoreWebhook,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    check_authorization(authorization)
    row = WebhookEvent(
        ulid=event.ulid,
        company_id=event.company_id,
        project_id=event.project_id,
        resource_name=event.resource_name,
        resource_id=event.resource_id,
        event_type=event.event_type,
        payload=event.model_dump(mode="json"),
    )
    async with Session() as session:
        session.add(row)
        await session.commit()
    await request.app.state.queue.enqueue_job("process_webhook_event", row.id)
    return {"status": "accepted", "id": row.id}
