"""Engine and sessions, created by the api lifespan or the worker start-up, never at import;
and the batched delete of rows past a retention (`prune_older_than`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, TextClause
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app import metrics
from app.logs import get_logger
from app.settings import Settings

log = get_logger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings, *, application_name: str) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"application_name": application_name},
            # A dead or unreachable Postgres must fail fast: webhooks answer 503 instead of
            # hanging past Procore's 5 s delivery timeout.
            "timeout": 3,
            "command_timeout": 30,
        },
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def sessions_for(
    settings: Settings, *, application_name: str = "procore-hooks-cli"
) -> AsyncIterator[SessionFactory]:
    """Sessions over an engine of their own, disposed at the end: for a command line run,
    which has no Runtime."""
    engine = create_engine(settings, application_name=application_name)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


# Postgres's answers that say "run the transaction again": a serialization failure, a deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# How often a unit of work is tried when Postgres answers so.
TRANSACTION_TRIES = 3


def retryable(exc: DBAPIError) -> str | None:
    """The SQLSTATE of `exc` when the transaction may simply be run again, else None."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate if sqlstate in RETRYABLE_SQLSTATES else None


# Rows past a retention (finished events, the call audit) are deleted by an upkeep run every
# PRUNE_EVERY_S: at most PRUNE_BATCHES_PER_RUN transactions of PRUNE_BATCH rows per table, so
# at most 5,000 rows a second of each, however large a backlog (a first enabling, say).
PRUNE_BATCH = 5000
PRUNE_BATCHES_PER_RUN = 10
PRUNE_EVERY_S = 10


async def prune_older_than(
    sessions: SessionFactory,
    statement: TextClause,
    *,
    table: str,
    days: float,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES_PER_RUN,
) -> int:
    """Run `statement` (a DELETE of at most `:batch` rows older than `:seconds`) in short
    transactions of its own, until one deletes fewer than `batch` rows or `batches` ran;
    logs and counts what went (`rows_pruned{table}`) and returns how many rows."""
    deleted = 0
    for _ in range(batches):
        async with sessions() as session, session.begin():
            result = await session.execute(statement, {"seconds": days * 86400, "batch": batch})
        count = cast(CursorResult[Any], result).rowcount
        deleted += count
        if count < batch:
            break
    if deleted:
        log.info("rows.pruned", table=table, rows=deleted, retention_days=days)
        metrics.rows_pruned(table, deleted)
    return deleted
