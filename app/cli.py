"""`procore-hooks`: run the api, a worker, migrations, or the whole thing for development.

The worker is started by import path (`workers.settings.WorkerSettings`), so app/ never imports
workers/.
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
from typing import Annotated, Any

import typer

from app.settings import Settings, get_settings

cli = typer.Typer(
    name="procore-hooks",
    help="Install-aware Procore webhook receiver and sync workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WORKER_SETTINGS_PATH = "workers.settings.WorkerSettings"


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
    """Serve the HTTP api (webhooks, health, admin, metrics)."""
    import uvicorn

    _settings()  # refuse to start on bad configuration, naming the variable
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


@cli.command()
def worker(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 0 if this host's worker heartbeat is fresh.")
    ] = False,
) -> None:
    """Run an arq worker (processing, dispatcher, probes)."""
    settings = _settings()
    if check:
        raise typer.Exit(0 if asyncio.run(_worker_is_alive(settings)) else 1)
    from arq.worker import run_worker

    module_path, _, attr = WORKER_SETTINGS_PATH.rpartition(".")
    worker_settings = getattr(importlib.import_module(module_path), attr)
    run_worker(worker_settings)


async def _worker_is_alive(settings: Settings) -> bool:
    from app.db import create_engine, create_session_factory
    from app.health.heartbeat import newest_beat_age

    engine = create_engine(settings, application_name="procore-hooks-check")
    try:
        async with create_session_factory(engine)() as session:
            age = await newest_beat_age(session, hostname=socket.gethostname())
    except (OSError, ValueError) as exc:
        typer.echo(f"worker check failed: {exc}", err=True)
        return False
    finally:
        await engine.dispose()
    if age is None:
        typer.echo("no heartbeat from this host", err=True)
        return False
    typer.echo(f"newest heartbeat {age:.1f}s old")
    return age <= settings.worker_stale_seconds


@cli.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (alembic upgrade)."""
    from app import migrate as migrations

    settings = _settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@cli.command()
def dev(
    port: Annotated[int, typer.Option(help="api port.")] = 8000,
) -> None:
    """Development: migrate, then run the api and a worker (Ctrl-C stops everything)."""
    settings = _settings()
    from app import migrate as migrations

    if asyncio.run(migrations.ensure_database(settings.database_url)):
        typer.echo("created the database")
    migrations.upgrade(settings.database_url)
    env = dict(os.environ)
    exe = [sys.executable, "-m", "app.cli"]
    # The children are this same program, with fixed arguments.
    children = [
        subprocess.Popen([*exe, "api", "--host", "127.0.0.1", "--port", str(port)], env=env),  # noqa: S603
        subprocess.Popen([*exe, "worker"], env=env),  # noqa: S603
    ]
    typer.echo(f"procore-hooks running: http://127.0.0.1:{port}/health  (Ctrl-C to stop)")
    _supervise(children)


def _supervise(children: list[subprocess.Popen[Any]]) -> None:
    """Wait until a child exits or we are interrupted, then stop them all gracefully."""
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
