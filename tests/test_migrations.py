"""Alembic migrations: up from empty, down to base, and up again, on a database of their own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from app.models import Base
from tests.conftest import PG_ADMIN_DSN, create_database, drop_database


async def _tables(database: str) -> set[str]:
    conn = await asyncpg.connect(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " UNION SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    return {r[0] for r in rows}


async def test_upgrade_downgrade_upgrade_on_an_empty_database() -> None:
    name = f"ph_migrations_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        tables = await _tables(name)
        assert {
            "events",
            "gates",
            "credentials",
            "company_credentials",
            "oauth_states",
            "resources",
            "procore_calls",
            "admin_actions",
            "worker_heartbeats",
            "resource_change_seq",
        } <= tables

        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _tables(name) == {"alembic_version"}

        await asyncio.to_thread(migrate.upgrade, url)
        assert "events" in await _tables(name)
    finally:
        await drop_database(name)


def test_head_revision_is_known() -> None:
    assert migrate.head_revision()


async def test_migrations_build_exactly_what_the_models_declare(database_url: str) -> None:
    """Autogenerate finds nothing to add: every table, column, index and constraint the models
    declare is built by the migrations (the suite's database is migrated to head)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


@contextlib.asynccontextmanager
async def _database_at(revision: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database of its own migrated to `revision`: its URL and a connection to it."""
    name = f"ph_migrations_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        await asyncio.to_thread(migrate.upgrade, url, revision)
        conn = await asyncpg.connect(PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}")
        try:
            yield url, conn
        finally:
            await conn.close()
    finally:
        await drop_database(name)


async def _leave_invalid(conn: asyncpg.Connection, index: str, on: str) -> None:
    """What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an INVALID index."""
    await conn.execute(f"CREATE INDEX {index} ON {on}")
    await conn.execute(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = $1::regclass", index
    )


async def _indexes(conn: asyncpg.Connection, *names: str) -> list[asyncpg.Record]:
    """These indexes, those that exist, by name: validity and definition."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) AS definition"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = ANY($1::text[]) ORDER BY c.relname",
        list(names),
    )
    return rows


async def test_the_finished_index_rebuild_reruns_over_a_build_cut_short() -> None:
    """Migration 0008 builds the partial `ix_events_finished_at` CONCURRENTLY under a temporary
    name. A build cut short leaves that name on an INVALID index; the rerun must not take it
    for done (IF NOT EXISTS looks at the name only) and swap an index nothing can use in."""
    async with _database_at("0007") as (url, conn):
        await _leave_invalid(conn, "ix_events_finished_at_next", "events (finished_at)")
        await asyncio.to_thread(migrate.upgrade, url)
        rows = await _indexes(conn, "ix_events_finished_at", "ix_events_finished_at_next")
    assert [(r["relname"], r["indisvalid"]) for r in rows] == [("ix_events_finished_at", True)]
    assert "WHERE (finished_at IS NOT NULL)" in rows[0]["definition"]


async def test_the_call_audit_indexes_rerun_and_serve_the_timed_reads() -> None:
    """Migration 0009 builds two partial indexes of `procore_calls` CONCURRENTLY. A build cut
    short leaves an INVALID index under the name, which the rerun must replace, not take for
    done. The probe budget (every gate upkeep tick) and the day's 403s (every metrics refresh)
    read through them, so their predicates must match the indexes word for word: through
    `ix_procore_calls_at` each would read every call of its window. (On a database of its own,
    with sequential scans off so that the empty table's plan shows the index.)"""
    from app.gates.probes import _SPENT
    from app.metrics.database import _STATE

    async with _database_at("0008") as (url, conn):
        await _leave_invalid(conn, "ix_procore_calls_probes_at", "procore_calls (id)")
        await asyncio.to_thread(migrate.upgrade, url)
        rows = await _indexes(conn, "ix_procore_calls_probes_at", "ix_procore_calls_forbidden_at")
        await conn.execute("SET enable_seqscan = off")
        plans = {
            label: "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {statement.text}"))
            for label, statement in (("budget", _SPENT), ("gauges", _STATE))
        }
    assert [(r["relname"], r["indisvalid"]) for r in rows] == [
        ("ix_procore_calls_forbidden_at", True),
        ("ix_procore_calls_probes_at", True),
    ]
    assert "(at) INCLUDE (company_id) WHERE (status = 403)" in rows[0]["definition"]
    assert "(at) WHERE ((purpose)::text = ANY" in rows[1]["definition"]
    assert "ix_procore_calls_probes_at" in plans["budget"], plans["budget"]
    assert "ix_procore_calls_forbidden_at" in plans["gauges"], plans["gauges"]
