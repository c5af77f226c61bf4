"""The CLI's operator commands (`procore-hooks status`, `procore-hooks replay`): the same
service functions as the admin API, straight over Postgres, shown as terminal tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
from rich.console import Console, Group
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from app import audit
from app.admin import service
from app.admin.schemas import GateOut, SummaryOut
from app.db import sessions_for
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


# --- status ---------------------------------------------------------------------------------


async def status(settings: Settings, *, console: Console, as_json: bool, every_gate: bool) -> int:
    """Print the queue and the gates; the exit code is 1 when something needs a person."""
    async with sessions_for(settings) as sessions, sessions() as session:
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
        for gate in gates.items:
            if gate.diagnosis or gate.remediation:
                console.print(_gate_details(gate))
        if gates.next_cursor is not None:
            console.print(f"(first {len(gates.items)} gates; see GET /admin/gates for the rest)")
    return 1 if overview.gates_by_state["parked"] or overview.workers.alive == 0 else 0


# An 80-column terminal is the measure: one short line per table row, and what needs words
# (the diagnosis's remediation) below the table, wrapped to the terminal.


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
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for name in ("gate", "scope", "state", "diagnosis", "events", "oldest", "probe"):
        table.add_column(name, justify="right" if name in ("gate", "events") else "left")
    now = datetime.now(UTC)
    for gate in gates:
        table.add_row(
            f"#{gate.id}",
            _scope(gate, short=True),
            gate.state.value,
            gate.diagnosis or "",
            str(gate.parked_events),
            "" if gate.oldest_parked_age_s is None else _age(gate.oldest_parked_age_s),
            _next_probe(gate, now),
        )
    if not gates:
        table.add_row("", "all gates open", *[""] * 5)
    return table


def _gate_details(gate: GateOut) -> Padding:
    """`#12 company 33: not_installed (403), parked 2.0h ago by policy`, and under it, indented
    and wrapped to the terminal, what someone must do to reopen the gate."""
    facts = gate.diagnosis or gate.state.value
    if gate.last_status is not None:
        facts += f" ({gate.last_status})"
    if gate.parked_at is not None:
        age = (datetime.now(UTC) - gate.parked_at).total_seconds()
        facts += f", parked {_age(age)} ago by {gate.parked_by or 'policy'}"
    head = Text(f"#{gate.id} {_scope(gate)}", style="bold").append(f": {facts}", style="")
    notes = [gate.remediation] if gate.remediation else []
    if gate.parked_by == "operator":
        notes.append(f"held by an operator: POST /admin/gates/{gate.id}/unpark releases it")
    body = Padding(Text("\n".join(notes)), (0, 0, 0, 2))
    return Padding(Group(head, body), (1, 0, 0, 0))


def _scope(gate: GateOut, *, short: bool = False) -> str:
    """`company 31`, `project 31/902` (`project 902` in the table: Procore's project ids are
    unique on their own), `credential 7`."""
    if gate.project_id is not None and short:
        return f"project {gate.project_id}"
    if gate.project_id is not None:
        return f"project {_text(gate.company_id)}/{gate.project_id}"
    if gate.company_id is not None:
        return f"company {gate.company_id}"
    return gate.scope_key.replace(":", " ", 1)


def _next_probe(gate: GateOut, now: datetime) -> str:
    if gate.parked_by == "operator":
        return "held"
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
    async with sessions_for(settings) as sessions, sessions() as session:
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
        async with sessions_for(settings) as sessions:
            return await service.replay_matching(
                sessions,
                where,
                force=force,
                actor=audit.cli_actor(),
                max_events=max_events,
                progress=lambda done: progress.update(task, completed=done),
            )
