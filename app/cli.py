"""`procore-hooks`: run the api, a worker, migrations, or the whole thing for development.

The worker is started by import path (`workers.settings.run`), so app/ never imports workers/.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.settings import AppEnv, Settings, get_settings

cli = typer.Typer(
    name="procore-hooks",
    help="Install-aware Procore webhook receiver and sync workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The worker's entry point: arq over WorkerSettings, reconnecting to Redis when it drops.
WORKER_ENTRY_PATH = "workers.settings.run"


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        typer.secho(f"configuration error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


@cli.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP api (webhooks, health, admin, metrics).

    One process per container is the deployment model (scale with replicas). With --workers
    above 1, the processes share their metrics through PROMETHEUS_MULTIPROC_DIR, emptied at
    start (a private temporary directory when it is not set), so /metrics counts them all."""
    import uvicorn

    from app.logs import uvicorn_log_config
    from app.serving import PROTOCOL_PATH

    settings = _settings()  # refuse to start on bad configuration, naming the variable
    if workers > 1:
        _share_metrics_between_processes()
    uvicorn.run(
        "app.main:app",
        log_config=uvicorn_log_config(settings) or uvicorn.config.LOGGING_CONFIG,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools, with a deadline and a size for each request's headers (slow clients).
        http=PROTOCOL_PATH,
        limit_concurrency=settings.api_max_connections,
        proxy_headers=True,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


def _share_metrics_between_processes() -> None:
    """Point every api process at one empty multi-process metrics directory. The children
    inherit the environment, and read it when they first import prometheus_client."""
    import atexit
    import shutil
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Samples of an earlier run would be summed with this one's.
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="procore-hooks-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    typer.echo(f"api: processes share their metrics in {directory}", err=True)


@cli.command()
def worker(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 0 if this host's worker heartbeat is fresh.")
    ] = False,
) -> None:
    """Run an arq worker (processing, dispatcher, probes); it waits out Redis outages."""
    settings = _settings()
    if check:
        raise typer.Exit(0 if asyncio.run(_worker_is_alive(settings)) else 1)
    module_path, _, attr = WORKER_ENTRY_PATH.rpartition(".")
    getattr(importlib.import_module(module_path), attr)()


async def _worker_is_alive(settings: Settings) -> bool:
    from app.db import sessions_for
    from app.health.heartbeat import newest_beat_age

    try:
        async with (
            sessions_for(settings, application_name="procore-hooks-check") as sessions,
            sessions() as session,
        ):
            age = await newest_beat_age(session, hostname=socket.gethostname())
    except (OSError, ValueError) as exc:
        typer.echo(f"worker check failed: {exc}", err=True)
        return False
    if age is None:
        typer.echo("no heartbeat from this host", err=True)
        return False
    typer.echo(f"newest heartbeat {age:.1f}s old")
    return age <= settings.worker_stale_seconds


@cli.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Migrate nothing: wait until the database is at this code's head (for init "
            "containers that must not start the api or a worker on an older schema).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0, help="With --wait: give up (exit 1) after this many seconds.")
    ] = 600.0,
) -> None:
    """Apply database migrations (alembic upgrade)."""
    from app import migrate as migrations

    settings = _settings()
    if wait:
        raise typer.Exit(asyncio.run(_wait_for_head(settings, limit_s=timeout)))
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


async def _wait_for_head(settings: Settings, *, limit_s: float) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import create_engine
    from app.migrate import current_revision, head_revision

    head = head_revision()
    deadline = time.monotonic() + limit_s
    engine = create_engine(settings, application_name="procore-hooks-migrate-wait")
    current: str | None = None
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    current = await current_revision(conn)
            except (SQLAlchemyError, OSError) as exc:
                current = f"unreachable ({type(exc).__name__})"
            if current == head:
                typer.echo(f"database at head ({head})")
                return 0
            if time.monotonic() >= deadline:
                typer.echo(f"database at {current or 'no revision'}, not {head}", err=True)
                return 1
            await asyncio.sleep(min(2.0, max(deadline - time.monotonic(), 0.0)))
    finally:
        await engine.dispose()


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    every_gate: Annotated[bool, typer.Option("--all", help="Open gates too.")] = False,
) -> None:
    """Queue depth, events by status, workers, and the gates that are not open.

    Exits 1 when a gate is parked or no worker is alive (usable in scripts and cron)."""
    from rich.console import Console

    from app.admin import console

    settings = _settings()
    code = asyncio.run(
        console.status(settings, console=Console(), as_json=as_json, every_gate=every_gate)
    )
    raise typer.Exit(code)


@cli.command()
def replay(
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Final status to replay (repeatable).")
    ] = None,
    company: Annotated[int | None, typer.Option(help="Company id.")] = None,
    project: Annotated[int | None, typer.Option(help="Project id.")] = None,
    resource: Annotated[str | None, typer.Option(help="Resource name, e.g. RFIs.")] = None,
    gate: Annotated[int | None, typer.Option(help="Events held by this gate id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Received at or after: ISO time, or 90m / 24h / 7d ago.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Received before (same forms).")] = None,
    force: Annotated[
        bool, typer.Option(help="Also replay done, ignored and unsupported events.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--max", min=1, help="At most this many.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be replayed.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Send final events (default: dead ones) back to the queue, attempts reset."""
    from rich.console import Console

    from app.admin import console, service
    from app.models import EventStatus

    settings = _settings()
    try:
        statuses = [EventStatus(s) for s in status or ["dead"]]
        service.check_replay_statuses(statuses, force=force)
        where = service.EventFilter(
            status=statuses,
            company_id=company,
            project_id=project,
            resource_name=resource,
            gate_id=gate,
            received_since=console.moment(since),
            received_until=console.moment(until),
        )
    except (ValueError, service.ReplayRefused) as exc:
        typer.secho(f"replay: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    matching = asyncio.run(console.count(settings, where))
    planned = matching if limit is None else min(matching, limit)
    typer.echo(f"{matching} events match; {planned} to replay")
    if dry_run or planned == 0:
        return
    if not yes and not typer.confirm("Replay them?"):
        raise typer.Exit(1)
    done = asyncio.run(
        console.replay(
            settings, where, force=force, max_events=limit, expected=matching, console=Console()
        )
    )
    typer.echo(f"replayed {done} events (back to queued; workers pick them up)")


def _hooks_commands() -> typer.Typer:
    # Built here, not at module level: `cli` stays the one command tree of this module.
    group = typer.Typer(help="Each company's Procore hook (webhook subscription).")

    @group.command("sync")
    def sync(
        company: Annotated[
            int | None, typer.Option(help="Company id (default: every known company).")
        ] = None,
    ) -> None:
        """Create, fix or re-enable the hook now; hooks of other namespaces are never touched."""
        from rich.console import Console

        from app.admin import upkeep as console

        settings = _settings()
        raise typer.Exit(asyncio.run(console.sync_hooks(settings, company, console=Console())))

    @group.command("token")
    def token(company: Annotated[int, typer.Option(help="Company id.")]) -> None:
        """Print the `Authorization` value a hand-made hook of this company must carry."""
        from app.webhooks.tokens import NoWebhookSecret, hook_authorization

        settings = _settings()
        try:
            typer.echo(hook_authorization(settings, company))
        except NoWebhookSecret as exc:
            typer.secho(str(exc), fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    return group


def _keys_commands() -> typer.Typer:
    group = typer.Typer(help="Keys of the secrets at rest (ENCRYPTION_KEY).")

    @group.command("rotate")
    def rotate(
        batch: Annotated[int, typer.Option(min=1, help="Credentials per transaction.")] = 100,
    ) -> None:
        """Re-encrypt every stored token under the newest ENCRYPTION_KEY, with progress.

        Rotate a key: put the new key first in ENCRYPTION_KEY (keeping the old one after it),
        deploy, run this, then drop the old key. Exits 1 if a value no listed key opens."""
        settings = _settings()
        code = asyncio.run(_rotate_keys(settings, batch))
        raise typer.Exit(code)

    return group


async def _rotate_keys(settings: Settings, batch: int) -> int:
    from app.crypto import Vault, VaultUnavailable
    from app.db import create_engine
    from app.rotation import Reencryption, reencrypt

    def show(table: str, report: Reencryption) -> None:
        typer.echo(
            f"{table}: {report.seen} seen, {report.rotated} re-encrypted, "
            f"{report.current} already under the newest key"
        )

    engine = create_engine(settings, application_name="procore-hooks-keys")
    try:
        report = await reencrypt(engine, Vault(settings.encryption_key), batch=batch, progress=show)
    except VaultUnavailable as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        return 2
    finally:
        await engine.dispose()
    show("all", report)
    if report.changed_meanwhile:
        typer.echo(
            f"{report.changed_meanwhile} renewed while this ran (written by a process with its "
            "own key list): run again once every process has the new ENCRYPTION_KEY"
        )
    if report.unreadable:
        typer.secho(
            f"{len(report.unreadable)} rows no listed key opens "
            f"({', '.join(report.unreadable[:20])}): keep the old key, or replace them "
            "(connect again, rotate the destination's secret)",
            fg=typer.colors.RED,
            err=True,
        )
        return 1
    typer.echo("done: the older keys can be dropped from ENCRYPTION_KEY")
    return 0


cli.add_typer(_hooks_commands(), name="hooks")
cli.add_typer(_keys_commands(), name="keys")


def _jobs_commands() -> typer.Typer:
    group = typer.Typer(
        help="Write jobs: the connector's own changes to Procore (the same, audited, as "
        "/admin/jobs)."
    )

    def refused(exc: Exception) -> typer.Exit:
        typer.secho(f"jobs: {exc}", fg=typer.colors.RED, err=True)
        return typer.Exit(2)

    @group.command("submit")
    def submit(
        source: Annotated[
            str, typer.Argument(help='JSON file (- for stdin): a job, a list, or {"jobs": [...]}')
        ],
    ) -> None:
        """Queue jobs (all or nothing, in the order given); prints each one's id and status."""
        from app.admin import jobs_console

        settings = _settings()
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
            jobs = jobs_console.read_jobs(text, settings)
            accepted = asyncio.run(jobs_console.submit(settings, jobs))
        except (OSError, jobs_console.Refused) as exc:
            raise refused(exc) from exc
        typer.echo(jobs_console.dumps(accepted))

    @group.command("list")
    def listing(
        status: Annotated[
            list[str] | None, typer.Option("--status", help="Status (repeatable).")
        ] = None,
        company: Annotated[int | None, typer.Option(help="Company id.")] = None,
        resource: Annotated[str | None, typer.Option(help="Resource name.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The newest jobs, by status, company and resource."""
        from rich.console import Console

        from app.admin import jobs_console
        from app.models import JobStatus

        settings = _settings()
        try:
            statuses = [JobStatus(s) for s in status or []]
        except ValueError as exc:
            raise refused(exc) from exc
        asyncio.run(
            jobs_console.listing(
                settings,
                statuses=statuses,
                company_id=company,
                resource_name=resource,
                limit=limit,
                as_json=as_json,
                out=Console(),
            )
        )

    @group.command("show")
    def show(job_id: Annotated[int, typer.Argument(min=1)]) -> None:
        """One job: status, attempts, Procore's answer, the resource id."""
        from app.admin import jobs_console

        found = asyncio.run(jobs_console.show(_settings(), job_id))
        if found is None:
            raise refused(ValueError(f"job {job_id} not found"))
        typer.echo(jobs_console.dumps(found))

    def action(
        job_id: int, what: str, *, force: bool = False, resource_id: int | None = None
    ) -> None:
        from app.admin import jobs_console, service

        try:
            done = asyncio.run(
                jobs_console.act(
                    _settings(),
                    job_id,
                    service.JobAction(what),
                    force=force,
                    resource_id=resource_id,
                )
            )
        except jobs_console.Refused as exc:
            raise refused(exc) from exc
        typer.echo(jobs_console.dumps(done))

    @group.command("cancel")
    def cancel(job_id: Annotated[int, typer.Argument(min=1)]) -> None:
        """Cancel a job not yet done (queued, retrying, parked or in_doubt)."""
        action(job_id, "cancel")

    @group.command("replay")
    def replay(
        job_id: Annotated[int, typer.Argument(min=1)],
        force: Annotated[
            bool, typer.Option(help="Also succeeded and in_doubt jobs (sent again knowingly).")
        ] = False,
    ) -> None:
        """Send a failed or cancelled job again (attempts reset, its place in order kept)."""
        action(job_id, "replay", force=force)

    @group.command("resolve")
    def resolve(
        job_id: Annotated[int, typer.Argument(min=1)],
        resource_id: Annotated[
            int | None, typer.Option(min=1, help="Procore's id of what the create made.")
        ] = None,
        not_made: Annotated[
            bool, typer.Option("--not-made", help="Procore has nothing: send it again.")
        ] = False,
    ) -> None:
        """Settle an in_doubt create: what Procore made (--resource-id), or --not-made."""
        if (resource_id is None) == (not not_made):
            raise refused(ValueError("give exactly one of --resource-id and --not-made"))
        action(job_id, "resolve", resource_id=resource_id)

    @group.command("events")
    def events(
        after: Annotated[str | None, typer.Option(help="`next_cursor` of the last call.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    ) -> None:
        """The jobs' outcomes after a cursor, in order (JSON, with the next cursor)."""
        from app.admin import jobs_console

        try:
            page = asyncio.run(jobs_console.events(_settings(), after=after, limit=limit))
        except jobs_console.Refused as exc:
            raise refused(exc) from exc
        typer.echo(jobs_console.dumps(page))

    return group


def _destination_commands() -> typer.Typer:
    group = typer.Typer(help="Destinations: where changes are delivered (signed webhooks).")
    from rich.console import Console

    from app.delivery import console

    def run(code: Any) -> None:
        raise typer.Exit(asyncio.run(code))

    @group.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """Every destination: state, counts, how far behind, last answer."""
        run(console.list_destinations(_settings(), console=Console(), as_json=as_json))

    @group.command("show")
    def show(destination: Annotated[int, typer.Argument(help="Destination id.")]) -> None:
        """One destination, in full (JSON)."""
        run(console.show(_settings(), destination, console=Console()))

    @group.command("add")
    def add(
        url: Annotated[str, typer.Argument(help="https URL deliveries are POSTed to.")],
        event_type: Annotated[
            list[str] | None, typer.Option("--type", help="Event type or family.* (repeatable).")
        ] = None,
        company: Annotated[
            list[int] | None, typer.Option(help="Only this company (repeatable).")
        ] = None,
        resource: Annotated[
            list[str] | None, typer.Option(help="Only this resource type (repeatable).")
        ] = None,
        include_object: Annotated[
            bool, typer.Option(help="Resource changes carry the object itself.")
        ] = False,
        description: Annotated[str | None, typer.Option(help="A note for operators.")] = None,
    ) -> None:
        """Add a destination and print its signing secret (shown this once)."""
        from app.delivery.schemas import DestinationIn

        wanted = DestinationIn(
            url=url, event_types=event_type or None, company_ids=company or None,
            resource_names=resource or None, include_object=include_object,
            description=description,
        )  # fmt: skip
        run(console.add(_settings(), wanted, console=Console()))

    @group.command("enable")
    def enable(destination: Annotated[int, typer.Argument(help="Destination id.")]) -> None:
        """Deliver to it again (what it missed follows, in order)."""
        from app.delivery.schemas import DestinationPatch

        patch = DestinationPatch(enabled=True)
        run(console.update(_settings(), destination, patch, console=Console()))

    @group.command("disable")
    def disable(destination: Annotated[int, typer.Argument(help="Destination id.")]) -> None:
        """Stop delivering to it (its position is kept: nothing is skipped)."""
        from app.delivery.schemas import DestinationPatch

        patch = DestinationPatch(enabled=False)
        run(console.update(_settings(), destination, patch, console=Console()))

    @group.command("remove")
    def remove(destination: Annotated[int, typer.Argument(help="Destination id.")]) -> None:
        """Remove it, with its attempts and dead letters."""
        run(console.remove(_settings(), destination, console=Console()))

    @group.command("rotate-secret")
    def rotate(
        destination: Annotated[int, typer.Argument(help="Destination id.")],
        overlap: Annotated[
            float | None, typer.Option(help="Seconds the previous secret still signs.")
        ] = None,
    ) -> None:
        """A new signing secret; the previous one signs beside it for the overlap."""
        settings = _settings()
        seconds = settings.destination_secret_overlap_seconds if overlap is None else overlap
        run(console.rotate(settings, destination, seconds, console=Console()))

    @group.command("dead-letters")
    def letters(destination: Annotated[int, typer.Argument(help="Destination id.")]) -> None:
        """The messages it refused, not yet replayed."""
        run(console.dead_letters(_settings(), destination, console=Console()))

    @group.command("replay")
    def replay_letters(
        destination: Annotated[int, typer.Argument(help="Destination id.")],
        letter: Annotated[
            int | None, typer.Option(help="One dead letter id (default: all, oldest first).")
        ] = None,
    ) -> None:
        """Send dead letters again."""
        run(console.replay(_settings(), destination, letter, console=Console()))

    return group


cli.add_typer(_jobs_commands(), name="jobs")
cli.add_typer(_destination_commands(), name="destinations")


@cli.command()
def resync(
    company: Annotated[int, typer.Option(help="Company id.")],
    project: Annotated[int | None, typer.Option(help="Only this project.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource, e.g. RFIs.")] = None,
    background: Annotated[
        bool, typer.Option("--background", help="Only request it; the workers run it.")
    ] = False,
) -> None:
    """Backfill the mirror from Procore's lists: add missing, update changed, mark gone."""
    from rich.console import Console

    from app.admin import upkeep as console
    from app.registry import resources

    if resource is not None and not resources.is_supported(resource):
        typer.secho(
            f"resync: unknown resource {resource!r} ({', '.join(resources.NAMES)})",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    settings = _settings()
    code = asyncio.run(
        console.resync_company(
            settings,
            company,
            project_id=project,
            resource_name=resource,
            background=background,
            console=Console(),
        )
    )
    raise typer.Exit(code)


@cli.command()
def dev(
    port: Annotated[int, typer.Option(help="api port.")] = 8000,
    sim_port: Annotated[
        int, typer.Option(help="Simulator port (when no Procore credentials are set).")
    ] = 8001,
) -> None:
    """Development: migrate, then run the api and a worker (Ctrl-C stops everything).

    Logs are console lines for people unless LOG_FORMAT is set.

    With no PROCORE_CLIENT_ID, the Procore simulator runs too, with demo companies and a
    trickle of webhook events (one company has not installed the app)."""
    settings = _settings()
    from app import migrate as migrations

    if asyncio.run(migrations.ensure_database(settings.database_url)):
        typer.echo("created the database")
    migrations.upgrade(settings.database_url)
    env = dict(os.environ)
    if "log_format" not in settings.model_fields_set:
        # A person reads what `dev` prints: readable lines, unless LOG_FORMAT (environment or
        # .env) asks for something else.
        env["LOG_FORMAT"] = "console"
    exe = [sys.executable, "-m", "app.cli"]
    # The children are this same program, with fixed arguments.
    children: list[subprocess.Popen[Any]] = []
    demo = None
    if settings.uses_simulator:
        from app import demo as demos

        demo = demos.plan(settings, api_port=port, sim_port=sim_port)
        env.update(demo.env)
        simulate_args = ["simulate", "--host", "127.0.0.1", "--port", str(sim_port)]
        children.append(subprocess.Popen([*exe, *simulate_args], env=env))  # noqa: S603
    children += [
        subprocess.Popen([*exe, "api", "--host", "127.0.0.1", "--port", str(port)], env=env),  # noqa: S603
        subprocess.Popen([*exe, "worker"], env=env),  # noqa: S603
    ]
    typer.echo(f"procore-hooks running: http://127.0.0.1:{port}/health  (Ctrl-C to stop)")
    if demo is not None:
        demo.start()
    try:
        _supervise(children)
    finally:
        if demo is not None:
            demo.stop()


@cli.command()
def simulate(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free port).")] = 8001,
    seed: Annotated[
        Path | None, typer.Option(help="Seed JSON (companies, projects, resources, clients).")
    ] = None,
) -> None:
    """Serve the Procore simulator (OAuth, REST, webhooks, /_sim control API). Dev only."""
    settings = _settings()
    if settings.app_env is AppEnv.PRODUCTION:
        typer.secho("the simulator does not run with APP_ENV=production", fg="red", err=True)
        raise typer.Exit(2)
    # The simulator is a package of its own (development only, never in the image): it is
    # started by its module path, as a separate program, never imported by the service.
    args = [sys.executable, "-m", "simulator", "--host", host, "--port", str(port)]
    if seed is not None:
        args += ["--seed", str(seed)]
    os.execv(sys.executable, args)  # noqa: S606


# How long `dev`'s children get to stop gracefully (the api's own graceful shutdown is 20 s).
_CHILDREN_STOP_S = 25.0


def _supervise(children: list[subprocess.Popen[Any]]) -> None:
    """Wait until a child exits or we are interrupted, then stop them all gracefully."""
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    # Ctrl-C as well as SIGTERM, set explicitly: a program started from a script in the
    # background inherits SIGINT ignored, and would then never stop on it.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    # They stop side by side: one deadline for all of them, not one each.
    deadline = time.monotonic() + _CHILDREN_STOP_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
