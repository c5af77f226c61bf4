"""The CLI's operator commands (`procore-hooks status`, `procore-hooks replay`): the same
service functions as the admin API, straight over Postgres, shown as terminal tables."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.admin import audit, service
from app.admin.schemas import GateOut, SummaryOut
from app.db import SessionFactory, create_engine, create_session_factory
from app.models import GateState
from app.settings import Settings

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def moment(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """`2026-03-02T10:00:00Z`, `2026-03-02`, or a span back from now: `90m`, `24h`, `7d`."""
    if not value:
        return None
    span = _DURATION.match(value.strip())
    if span is not None:
        amount, unit = int(span.group(1)), _UNITS[span.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_engine(settings, application_name="procore-hooks-cli")
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


# --- status ---------------------------------------------------------------------------------


async def status(settings: Settings, *, console: Console, as_json: bool, every_gate: bool) -> int:
    """Print the queue and the gates; the exit code is 1 when something needs a person."""
    async with _sessions(settings) as sessions, sessions() as session:
        overview = await service.summary(
            session, worker_stale_seconds=settings.worker_stale_seconds
        )
        states = () if every_gate else (GateState.PARKED, GateState.SUSPECT)
        gates = await service.list_gates(session, state=states, limit=service.MAX_PAGE)
    if as_json:
        document = {
            "summary": overview.model_dump(mode="json"),
            "gates": [g.model_dump(mode="json") for g in gates.items],
        }
        console.print_json(orjson.dumps(document).decode())
    else:
        console.print(_summary_table(overview))
        console.print(_gates_table(gates.items, every_gate=every_gate))
        if gates.next_cursor is not None:
            console.print(f"(first {len(gates.items)} gates; see GET /admin/gates for the rest)")
    return 1 if overview.gates_by_state["parked"] or overview.workers.alive == 0 else 0


def _summary_table(overview: SummaryOut) -> Table:
    table = Table(title="Queue and events", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("due now (queue depth)", str(overview.queue_depth))
    table.add_row("oldest due event waits", _age(overview.oldest_due_age_s))
    table.add_row("parked events", str(overview.parked_events))
    for name, count in overview.events_by_status.items():
        if count and name != "parked":
            table.add_row(f"events {name}", str(count))
    gates = ", ".join(f"{n} {state}" for state, n in overview.gates_by_state.items())
    table.add_row("gates", gates)
    workers = overview.workers
    beat = (
        "never"
        if workers.newest_heartbeat_age_s is None
        else _age(workers.newest_heartbeat_age_s) + " ago"
    )
    table.add_row("workers alive", f"{workers.alive} (newest heartbeat {beat})")
    return table


def _gates_table(gates: list[GateOut], *, every_gate: bool) -> Table:
    title = "Gates" if every_gate else "Gates not open (parked or suspect)"
    table = Table(title=title, title_justify="left")
    for name in ("id", "scope", "company", "project", "state", "diagnosis", "parked", "oldest"):
        table.add_column(name, justify="right" if name in ("id", "parked") else "left")
    table.add_column("next probe")
    table.add_column("remediation", overflow="fold")
    now = datetime.now(UTC)
    for gate in gates:
        table.add_row(
            str(gate.id),
            gate.scope.value,
            _text(gate.company_id),
            _text(gate.project_id),
            gate.state.value,
            gate.diagnosis or "",
            str(gate.parked_events),
            "" if gate.oldest_parked_age_s is None else _age(gate.oldest_parked_age_s),
            _next_probe(gate, now),
            gate.remediation or "",
        )
    if not gates:
        table.add_row(*[""] * 9, "all gates open")
    return table


def _next_probe(gate: GateOut, now: datetime) -> str:
    if gate.parked_by == "operator":
        return "held by operator"
    if gate.next_probe_at is None:
        return ""
    wait = (gate.next_probe_at - now).total_seconds()
    return "due" if wait <= 0 else f"in {_age(wait)}"


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


# --- replay ---------------------------------------------------------------------------------


async def count(settings: Settings, where: service.EventFilter) -> int:
    async with _sessions(settings) as sessions, sessions() as session:
        return await service.count_matching(session, where)


async def replay(
    settings: Settings,
    where: service.EventFilter,
    *,
    force: bool,
    max_events: int | None,
    expected: int,
    console: Console,
) -> int:
    """Replay in committed batches with a progress bar; returns how many were replayed."""
    total = expected if max_events is None else min(expected, max_events)
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("replay", total=total)
        async with _sessions(settings) as sessions:
            return await service.replay_matching(
                sessions,
                where,
                force=force,
                actor=audit.cli_actor(),
                max_events=max_events,
                progress=lambda done: progress.update(task, completed=done),
            )
