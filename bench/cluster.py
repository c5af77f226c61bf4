"""A whole deployment on one machine, for the proof suite and the process-level benches.

Real processes only: a PRIVATE PostgreSQL (initdb in a temp dir, its own port) and a PRIVATE
Redis (its own port, no persistence), the simulator (`python -m simulator`), N api
processes behind one port (`procore-hooks api --workers N`: uvicorn's own process manager) and
M arq workers (`procore-hooks worker`). Scenarios may stop, kill, flush and restart any of them;
the shared servers on 5432/6379 are never touched.

    with Cluster(workers=2) as c:          # Postgres + Redis + simulator + api + workers
        c.deliver_to_api(concurrency=16)   # a simulator hook POSTing to the api
        asyncio.run(c.sim_post("/_sim/events", {...}))
        c.kill_worker(0); c.start_worker(0)
        c.stop_postgres(); c.start_postgres()

Everything the processes print goes to files in the temp dir (kept on failure: `c.root`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis
from ulid import ULID

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("PROOF_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("PROOF_REDIS_SERVER", "redis-server")
WEBHOOK_TOKEN = "proof-webhook-token"
ENCRYPTION_KEY = "7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o="
DATABASE = "procore_hooks_proof"
FINAL = ("done", "skipped", "dead", "ignored", "unsupported")

# Short timings so a scenario finishes in minutes; the behaviour is the production code's.
DEFAULT_ENV = {
    "APP_ENV": "development",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "json",
    "WORKER_METRICS_PORT": "0",
    "DISPATCH_INTERVAL_SECONDS": "1",
    "DISPATCH_LEASE_SECONDS": "5",
    "PROCESSING_LEASE_SECONDS": "10",
    "RETRY_BASE_SECONDS": "0.2",
    "RETRY_CAP_SECONDS": "2",
    "RETRY_MAX_ATTEMPTS": "8",
    "RATE_LIMIT_JITTER_SECONDS": "0.05",
    "PROCORE_TIMEOUT_SECONDS": "3",
    "WORKER_HEARTBEAT_SECONDS": "5",
    "DATABASE_POOL_SIZE": "5",
    "DATABASE_MAX_OVERFLOW": "5",
    "PROBE_BASE_SECONDS": "1",
    "PROBE_CAP_SECONDS": "4",
    "PARK_WINDOW_SECONDS": "60",
    # The service subscribes itself (app.subscriptions: one hook per installed company, in the
    # simulator too). The scenarios deliver through a hook of their own, with settings they
    # control; the service's own hook is limited to a resource they never change.
    "SYNC_RESOURCES": "Company Users",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of one process (and 0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


@dataclass
class Cluster:
    workers: int = 2
    api_processes: int = 1
    env_overrides: dict[str, str] = field(default_factory=dict)
    keep_root: bool = False
    pg_settings: tuple[str, ...] = ("fsync=off", "max_connections=300")
    # Like the compose file's `restart: unless-stopped`: a worker process that exits on its
    # own is started again (counted in `worker_restarts`); killed ones are the scenario's.
    restart_workers: bool = True

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ph-proof-"))
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.sim_port = free_port()
        self.api_port = free_port()
        self.run_id = secrets.token_hex(3)
        self.procs: dict[str, Proc] = {}
        self.hook_id: int | None = None
        self.worker_restarts = 0
        self._closing = threading.Event()
        self._lock = threading.RLock()

    # -- URLs ---------------------------------------------------------------------------

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{DATABASE}"

    @property
    def database_url(self) -> str:
        return self.pg_dsn.replace("postgresql://", "postgresql+asyncpg://")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

        values = {
            **{k: v for k, v in os.environ.items() if not k.isupper() or k in _INHERITED},
            **DEFAULT_ENV,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "QUEUE_NAME": f"proof-{self.run_id}:queue",
            # The simulator's control hook delivers every company's events with one token:
            # a hand-made hook, so a shared token (each company's own hooks derive theirs).
            "WEBHOOK_AUTH_TOKENS": "proof-webhook-secret",
            "WEBHOOK_SHARED_TOKENS": WEBHOOK_TOKEN,
            "ADMIN_TOKEN": "proof-admin-token",
            "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "PROCORE_API_BASE": self.sim_url,
            "PROCORE_LOGIN_BASE": self.sim_url,
            "PROCORE_CLIENT_ID": DEFAULT_CLIENT_ID,
            "PROCORE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "PUBLIC_BASE_URL": self.api_url,
        }
        values.update(self.env_overrides)
        return values

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(keep=exc[0] is not None or self.keep_root)

    def start(self) -> None:
        self.init_postgres()
        self.start_postgres()
        self.create_database()
        self.start_redis()
        self.start_simulator()
        self.migrate()
        self.start_api()
        for n in range(self.workers):
            self.start_worker(n)
        if self.restart_workers:
            threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        while not self._closing.wait(0.5):
            self.revive_workers()

    def revive_workers(self) -> list[int]:
        """Start again every worker process that exited on its own."""
        revived = []
        with self._lock:
            for n in range(self.workers):
                proc = self.procs.get(f"worker-{n}")
                if proc is not None and not proc.alive and not self._closing.is_set():
                    self._stop(f"worker-{n}", signal.SIGTERM, timeout=1)
                    self.start_worker(n)
                    revived.append(n)
        self.worker_restarts += len(revived)
        return revived

    def close(self, *, keep: bool = False) -> None:
        self._closing.set()
        for name in list(self.procs):
            if name != "postgres":
                self._stop(name, signal.SIGTERM, timeout=15)
        self._stop("postgres", signal.SIGINT, timeout=30)
        if keep:
            print(f"cluster: logs and data kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- processes ----------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        as_postgres: bool = False,
    ) -> Proc:
        log = (self.root / f"{name}.log").open("ab")
        preexec = None
        if as_postgres and os.geteuid() == 0:
            user = pwd.getpwnam("postgres")

            def preexec() -> None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env if env is not None else self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,  # setuid to postgres before exec: what it is for
            start_new_session=True,
        )
        proc = Proc(name, argv, popen, log)
        self.procs[name] = proc
        return proc

    def _stop(self, name: str, sig: int, *, timeout: float) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.popen is None:
            return
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.popen.pid, sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(10)
        if proc.log is not None:
            proc.log.close()

    def _wait_http(self, url: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(url, timeout=1)
                return
            except httpx.TransportError:
                proc = self.procs.get(name)
                if (proc and not proc.alive) or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} did not start; see {self.root}/{name}.log"
                    ) from None
                time.sleep(0.1)

    # -- Postgres -----------------------------------------------------------------------

    def init_postgres(self) -> None:
        data = self.root / "pg"
        data.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            os.chown(data, user.pw_uid, user.pw_gid)
        init = self._spawn(
            "initdb",
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            as_postgres=True,
        )
        assert init.popen is not None
        if init.popen.wait(120) != 0:
            raise RuntimeError(f"initdb failed; see {self.root}/initdb.log")
        self._stop("initdb", signal.SIGTERM, timeout=1)

    def start_postgres(self) -> None:
        argv = [str(PG_BIN / "postgres"), "-D", str(self.root / "pg"), "-p", str(self.pg_port)]
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        for setting in self.pg_settings:
            argv += ["-c", setting]
        self._spawn("postgres", argv, as_postgres=True)
        deadline = time.monotonic() + 30
        while not self._pg_ready():
            if time.monotonic() > deadline or not self.procs["postgres"].alive:
                raise RuntimeError(f"postgres did not start; see {self.root}/postgres.log")
            time.sleep(0.1)

    def stop_postgres(self) -> None:
        """Fast shutdown (SIGINT): sessions are cut, nothing committed is lost."""
        self._stop("postgres", signal.SIGINT, timeout=30)

    def _pg_ready(self) -> bool:
        async def probe() -> bool:
            try:
                conn = await asyncpg.connect(
                    f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres", timeout=1
                )
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return False
            await conn.close()
            return True

        return asyncio.run(probe())

    def create_database(self) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
        )

    # -- Redis --------------------------------------------------------------------------

    def start_redis(self) -> None:
        self._spawn(
            "redis",
            [
                REDIS_SERVER,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
        )
        deadline = time.monotonic() + 10
        while not self._redis_ready():
            if time.monotonic() > deadline:
                raise RuntimeError("redis did not start")
            time.sleep(0.05)

    def stop_redis(self) -> None:
        self._stop("redis", signal.SIGTERM, timeout=10)

    def _redis_ready(self) -> bool:
        async def probe() -> bool:
            client = Redis.from_url(self.redis_url, socket_connect_timeout=0.5)
            try:
                return bool(await client.ping())
            except (OSError, ConnectionError, Exception):  # redis raises its own ConnectionError
                return False
            finally:
                await client.aclose()

        return asyncio.run(probe())

    async def redis_info(self, section: str = "memory") -> dict[str, Any]:
        client = Redis.from_url(self.redis_url)
        try:
            info: dict[str, Any] = await client.info(section)
            return info
        finally:
            await client.aclose()

    async def redis_zcard(self, key: str) -> int:
        client = Redis.from_url(self.redis_url)
        try:
            return int(await client.zcard(key))
        finally:
            await client.aclose()

    async def flushall(self) -> None:
        client = Redis.from_url(self.redis_url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    # -- app processes --------------------------------------------------------------------

    def start_simulator(self) -> None:
        self._spawn("simulator", [sys.executable, "-m", "simulator", "--port", str(self.sim_port)])
        self._wait_http(f"{self.sim_url}/_sim", "simulator")
        limits = {"hourly": 10**9, "spike": 10**9}
        httpx.put(f"{self.sim_url}/_sim/rate_limit", json=limits).raise_for_status()

    def start_api(self) -> None:
        argv = [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1"]
        argv += ["--port", str(self.api_port), "--workers", str(self.api_processes)]
        self._spawn("api", argv)
        self._wait_http(f"{self.api_url}/health/live", "api")

    def start_worker(self, n: int) -> Proc:
        return self._spawn(f"worker-{n}", [sys.executable, "-m", "app.cli", "worker"])

    def kill_worker(self, n: int) -> None:
        """SIGKILL: no shutdown hook runs, its rows stay `processing` until the lease ends."""
        with self._lock:
            self._stop(f"worker-{n}", signal.SIGKILL, timeout=10)

    def stop_worker(self, n: int) -> None:
        self._stop(f"worker-{n}", signal.SIGTERM, timeout=30)

    def pids(self, prefix: str) -> list[int]:
        """Pids of the named processes (for the api, uvicorn's worker processes when N > 1)."""
        found: list[int] = []
        for name, proc in self.procs.items():
            if name.startswith(prefix) and proc.alive:
                kids = children_of(proc.pid) if name == "api" and self.api_processes > 1 else []
                found += [k for k in kids if "multiprocessing" not in _cmdline(k)] or [proc.pid]
        return found

    # -- simulator --------------------------------------------------------------------------

    def deliver_to_api(self, *, concurrency: int = 16, time_scale: float = 0.25) -> int:
        hook = httpx.post(
            f"{self.sim_url}/_sim/hooks",
            json={
                "destination_url": f"{self.api_url}/webhooks/procore",
                "authorization": WEBHOOK_TOKEN,
                "payload_version": "v2.0",
                "concurrency": concurrency,
                "time_scale": time_scale,
            },
        )
        hook.raise_for_status()
        self.hook_id = int(hook.json()["id"])
        return self.hook_id

    async def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=120) as client:
            answer = await client.request(method, path, **kwargs)
            answer.raise_for_status()
            return answer.json()

    async def drain(self, timeout: float = 300) -> bool:
        answer = await self.sim("POST", "/_sim/drain", json={"timeout_s": min(timeout, 600)})
        return bool(answer["drained"])

    # -- database -------------------------------------------------------------------------

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def statuses(self) -> dict[str, int]:
        rows = await self.query("SELECT status::text, count(*) FROM events GROUP BY 1")
        return {r[0]: int(r[1]) for r in rows}

    async def wait_final(self, expected: int, timeout: float) -> dict[str, int]:
        """Wait until `expected` events are stored and every one is final; the last counts."""
        deadline = time.monotonic() + timeout
        while True:
            counts = await self.statuses()
            total = sum(counts.values())
            if total >= expected and all(s in FINAL for s in counts):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"not final within {timeout}s: {counts} (expected {expected})")
            await asyncio.sleep(0.5)

    async def mirror_vs_simulator(
        self, company_id: int, keys: set[tuple[str, int]]
    ) -> dict[str, int]:
        """Compare the mirror with the simulator's current state for the given resources."""
        sim_rows = await self.sim("GET", "/_sim/resources", params={"company_id": company_id})
        live = {(r["resource_name"], int(r["body"]["id"])): r["body"] for r in sim_rows}
        rows = await self.query(
            "SELECT resource_name, resource_id, data::text, deleted_at IS NOT NULL"
            " FROM resources WHERE company_id = $1",
            company_id,
        )
        mirror = {(r[0], int(r[1])): (orjson.loads(r[2]) if r[2] else None, r[3]) for r in rows}
        equal = differ = missing = deleted_ok = deleted_wrong = 0
        for key in keys:
            have = mirror.get(key)
            if key in live:
                if have is None or have[1]:
                    missing += 1
                elif have[0] == live[key]:
                    equal += 1
                else:
                    differ += 1
            elif have is not None and have[1]:
                deleted_ok += 1
            else:
                deleted_wrong += 1
        duplicates = await self.query(
            "SELECT count(*) - count(DISTINCT (company_id, resource_name, resource_id))"
            " FROM resources"
        )
        return {
            "resources": len(keys),
            "equal": equal,
            "differ": differ,
            "missing": missing,
            "deleted_ok": deleted_ok,
            "deleted_wrong": deleted_wrong,
            "duplicate_rows": int(duplicates[0][0]),
        }


_INHERITED = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextlib.contextmanager
def cluster(**kwargs: Any) -> Iterator[Cluster]:
    with Cluster(**kwargs) as c:
        yield c


# -- load: webhook POSTs over raw keep-alive connections ------------------------------------


def webhook_request(
    port: int, company_id: int, project_id: int, resource_id: int, resource: str = "RFIs"
) -> bytes:
    """One v2.0 delivery as Procore sends it, with a fresh ULID, as raw HTTP/1.1 bytes."""
    body = orjson.dumps(
        {
            "id": secrets.randbits(62),
            "ulid": str(ULID()),
            "timestamp": "2026-11-29T08:00:00.000000Z",
            "user_id": 77,
            "company_id": company_id,
            "project_id": project_id,
            "api_version": "v2.0",
            "event_type": "update",
            "resource_name": resource,
            "resource_id": resource_id,
            "metadata": {"source_application_id": None},
        }
    )
    head = (
        f"POST /webhooks/procore HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {WEBHOOK_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


@dataclass
class LoadResult:
    sent: int = 0
    answered: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return int(head[9:12])


async def closed_loop(
    port: int, make: Any, *, connections: int, seconds: float, warmup: float = 1.0
) -> LoadResult:
    """As fast as the api answers: `connections` clients, each waiting for its answer."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    start = loop.time()
    measure_from, end = start + warmup, start + warmup + seconds

    async def client() -> None:
        conn = _Conn(*await asyncio.open_connection("127.0.0.1", port))
        try:
            while (now := loop.time()) < end:
                status = await conn.exchange(make())
                if now >= measure_from:
                    result.answered += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    result.latencies_ms.append((loop.time() - now) * 1000)
        finally:
            conn.writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = seconds
    result.sent = result.answered
    return result


async def open_loop(
    port: int, make: Any, *, rate: float, seconds: float, connections: int = 64
) -> LoadResult:
    """`rate` requests per second on a fixed schedule, whatever the answers take; latency is
    measured from the scheduled send time (no coordinated omission)."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Conn(*await asyncio.open_connection("127.0.0.1", port)))
    start = loop.time()
    pending: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.exchange(make())
        finally:
            idle.put_nowait(conn)
        result.answered += 1
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.latencies_ms.append((loop.time() - scheduled) * 1000)

    n = 0
    while (scheduled := start + n / rate) < start + seconds:
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    await asyncio.gather(*pending)
    result.sent = n
    result.seconds = seconds
    while not idle.empty():
        idle.get_nowait().writer.close()
    return result
