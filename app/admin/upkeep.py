"""The CLI's `hooks sync` and `resync` (app.cli): the admin API's own service functions
(app.admin.service, which audit), run in the CLI's process with a terminal view."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import text

from app import audit
from app.admin import service as admin
from app.resync import service as resync
from app.runtime import open_runtime
from app.schedule import runs
from app.settings import Settings
from app.subscriptions import service


async def sync_hooks(settings: Settings, company_id: int | None, *, console: Console) -> int:
    """Sync one company, or every known one (after discovering installs); exit code 1 if any
    sync failed."""
    runtime = open_runtime(settings, name="procore-hooks-cli")
    try:
        if company_id is None:
            await service.discover(runtime)
            async with runtime.sessions() as session:
                ids = [
                    int(c)
                    for c in (
                        await session.execute(
                            text("SELECT company_id FROM company_hooks ORDER BY 1")
                        )
                    ).scalars()
                ]
        else:
            ids = [company_id]
        table = Table("company", "hook", "changes", "refused", "re-enabled", "result")
        failed = 0
        for cid in ids:
            report = await admin.sync_hooks(runtime, cid, actor=audit.cli_actor())
            failed += report.error is not None
            table.add_row(
                str(cid),
                str(report.hook_id or "-"),
                _changes(report.changes),
                "\n".join(report.refused) or "-",
                str(report.reenabled),
                report.error or report.skipped or report.remediation or "ok",
            )
        console.print(table)
        return 1 if failed else 0
    finally:
        await runtime.close()


def _changes(changes: list[str]) -> str:
    """A first sync adds a trigger per resource and event type: counted, not listed."""
    triggers = [c for c in changes if c.startswith("add trigger")]
    shown = [c for c in changes if not c.startswith("add trigger")]
    if triggers:
        shown.append(f"{len(triggers)} triggers added")
    return "\n".join(shown) or "none"


async def resync_company(
    settings: Settings,
    company_id: int,
    *,
    project_id: int | None,
    resource_name: str | None,
    background: bool,
    console: Console,
) -> int:
    """Request a resync; unless `background`, run it here with a progress bar (an interrupted
    run is resumed by the workers, or by running the same command again)."""
    runtime = open_runtime(settings, name="procore-hooks-cli")
    try:
        async with runtime.sessions() as session, session.begin():
            requested = await admin.request_resync(
                session,
                company_id,
                project_id=project_id,
                resource_name=resource_name,
                actor=audit.cli_actor(),
            )
        run_id = requested.id
        if background:
            console.print(f"resync run {run_id} requested; workers will run it")
            return 0
        with Progress(
            TextColumn("[bold]resync {task.fields[run]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("parts  {task.fields[listed]} listed, {task.fields[written]} written, "
                       "{task.fields[absent]} absent"),
            console=console,
        ) as bar:  # fmt: skip
            task = bar.add_task("resync", total=None, run=run_id, listed=0, written=0, absent=0)

            def show(view: runs.RunView) -> None:
                done = view.progress
                bar.update(
                    task,
                    total=done["parts"],
                    completed=done["parts_done"],
                    listed=done["listed"],
                    written=done["written"],
                    absent=done["absent"],
                )

            view = await resync.run(runtime, run_id, budget_seconds=float("inf"), progress=show)
        if view is None:
            console.print(f"resync run {run_id} is being run by a worker; see its progress with "
                          f"GET /admin/resync-runs/{run_id}")  # fmt: skip
            return 0
        console.print(f"resync run {run_id}: {view.status} {view.progress}")
        if view.last_error:
            console.print(f"[red]{view.last_error}[/red]")
        return 0 if view.status == "done" else 1
    finally:
        await runtime.close()
