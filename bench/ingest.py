"""Ingest benchmark: the service's receiver against a raw ASGI endpoint, a bare FastAPI one and
the naive stack.

    python -m bench.ingest [--runs 3] [--duration 15] [--connections 64] [--threads N]
    (or: make bench)

Four servers, the same load, on loopback; each is one uvicorn process with the same flags,
started alone so they never compete for the two cores, in turn (a, b, c, r, a, b, c, r, ...)
for `--runs` rounds, so that the machine's other load falls on all of them alike:

  (a) receiver  `app.main:app`: POST /webhooks/procore stores every event durably in Postgres
                (group commit) and hands it to the arq queue after the commit.
  (b) bare      `bench.bare_app:app`: the same payload validated into a pydantic model, 202,
                no I/O. The floor for a FastAPI endpoint.
  (c) naive     `bench.naive_app:app`: pydantic model + SQLAlchemy ORM insert + commit per
                request + arq enqueue_job per request, on the same Postgres and Redis.
  (r) raw       `bench.raw_app:app`: a raw ASGI callable that checks the Authorization header,
                reads the body and answers 202. The floor of any endpoint on these flags.

The load is wrk with a Lua script that sends a fresh v2.0 event (a new ULID) on every request,
with the Authorization header. Printed: req/s, p50 and p99 latency of every round, the median
of each server over the rounds, the ratios a/r, a/b and a/c of the medians (and the median of
the rounds' own a/r), and, after each round of (a) has shut down, whether every event it
answered 2xx in that round is in its database.

The script makes its own Postgres database (migrated with Alembic) and its own Redis queue
names, and removes both at the end. wrk comes from Debian (`apt-get install wrk`); the script
installs it when missing and it runs as root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from ulid import ULID

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RUN_ID = f"ph-bench-{os.getpid()}-{secrets.token_hex(3)}"
DATABASE = RUN_ID.replace("-", "_")
WEBHOOK_TOKEN = f"bench-webhook-token-{secrets.token_hex(8)}"
PATH = "/webhooks/procore"

# The same for every server: one process, uvloop, httptools, no access log.
UVICORN_FLAGS = (
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
    "--timeout-graceful-shutdown",
    "20",
)

# One new v2.0 event per request (FACTS.md §1). The ULID is unique across threads and runs:
# 10 chars of time, 4 of a per-run nonce, 2 of the thread, 10 of a per-thread counter. The
# event id is above 2^53, as real ones are, so it is built as a string (LuaJIT has doubles).
WRK_SCRIPT = r"""
local CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
local RESOURCES = {"RFIs", "Submittals", "Observation Items"}
local BODY = '{"id":%s,"ulid":"%s","timestamp":"%s",' ..
  '"metadata":{"source_user_id":77,"source_company_id":%d,"source_project_id":%d,' ..
  '"source_operation_id":null,"source_application_id":null},' ..
  '"user_id":77,"company_id":%d,"project_id":%d,"api_version":"v2.0",' ..
  '"event_type":"update","resource_name":"%s","resource_id":%d}'

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local function base32(n, width)
  local out = {}
  for i = width, 1, -1 do
    local d = n % 32
    out[i] = CROCKFORD:sub(d + 1, d + 1)
    n = math.floor(n / 32)
  end
  return table.concat(out)
end

local prefix, id_prefix, stamp
local counter = 0
function init(args)
  local nonce = tonumber(args[2])
  wrk.method = "POST"
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Content-Type"] = "application/json"
  prefix = base32(os.time() * 1000, 10) .. base32(nonce, 4) .. base32(tid, 2)
  id_prefix = string.format("9%04d%02d", nonce % 10000, tid % 100)
  stamp = os.date("!%Y-%m-%dT%H:%M:%S.000000Z")
end

function request()
  counter = counter + 1
  local company = 31 + counter % 16
  local project = 900 + counter % 50
  local body = string.format(BODY, id_prefix .. string.format("%011d", counter),
    prefix .. base32(counter, 10), stamp, company, project, company, project,
    RESOURCES[counter % 3 + 1], 5000 + counter)
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass
class Target:
    key: str
    label: str
    app: str
    env: dict[str, str]
    # Rows of this table hold what the server stored (None: it stores nothing).
    table: str | None


@dataclass
class Load:
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def answered_2xx(self) -> int:
        return self.requests - self.non_2xx


@dataclass
class Outcome:
    target: str
    label: str
    run: int = 1
    load: Load | None = None
    answered_2xx_total: int = 0
    stored_rows: int | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    # The server process's own CPU per measured request, and how many cores the whole machine
    # kept busy meanwhile (wrk, Postgres, Redis and anyone else included).
    cpu_ms_per_request: float | None = None
    machine_busy: float | None = None
    # The CPU of the Postgres backends serving this run's database, per measured request.
    postgres_ms_per_request: float | None = None


# --- the machine ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("bench: wrk is missing; install it with: sudo apt-get install -y wrk")
    print("bench: installing wrk (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: apt-get installed no wrk")
    return found


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


async def postgres_backends() -> list[int]:
    """The Postgres backends connected to this run's database."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", DATABASE)
        return [int(row["pid"]) for row in rows]
    finally:
        await conn.close()


def machine_busy() -> float:
    """CPU seconds the machine has been busy, all cores."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / _TICK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- database and queue -----------------------------------------------------------------------


def database_url() -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{DATABASE}"


async def create_database() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


async def drop_database() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate() -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["url"] = database_url()
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


async def count_rows(table: str) -> int | None:
    dsn = database_url().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", table)
        if exists is None:
            return None
        return int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))  # noqa: S608
    finally:
        await conn.close()


async def checkpoint() -> None:
    """Flush what the previous server wrote, so it does not slow the next one down."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def forget_queues(queue_names: list[str]) -> int:
    """Remove the queued jobs of this run (no worker ran) and anything named after it."""
    client = Redis.from_url(REDIS_URL)
    removed = 0
    try:
        for queue in queue_names:
            job_ids = await client.zrange(queue, 0, -1)
            for start in range(0, len(job_ids), 1000):
                keys = [b"arq:job:" + job_id for job_id in job_ids[start : start + 1000]]
                removed += await client.delete(*keys)
            removed += await client.delete(queue)
        async for key in client.scan_iter(match=f"*{RUN_ID}*", count=1000):
            removed += await client.delete(key)
    finally:
        await client.aclose()
    return removed


# --- servers ----------------------------------------------------------------------------------


def start_server(target: Target, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    # The working directory is empty, so no developer's `.env` leaks into the run.
    argv = [sys.executable, "-m", "uvicorn", target.app, "--port", str(port), *UVICORN_FLAGS]
    argv += ["--app-dir", str(ROOT)]
    env = {**os.environ, **target.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(argv, cwd=workdir, env=env, start_new_session=True)


def wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode} before listening")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port} after {timeout:.0f}s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def preflight(port: int) -> tuple[int, str]:
    """One real request before the load, so a broken server is reported, not measured."""
    body = json.dumps(
        {
            "id": 9_100_000_000_000_000_001,
            "ulid": str(ULID()),
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "metadata": {"source_user_id": 77, "source_application_id": None},
            "user_id": 77,
            "company_id": 31,
            "project_id": 900,
            "api_version": "v2.0",
            "event_type": "update",
            "resource_name": "RFIs",
            "resource_id": 5150,
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": WEBHOOK_TOKEN},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read(300).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode(errors="replace")


# --- load -------------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Load:
    load = Load()
    if match := re.search(r"(\d+) requests in", output):
        load.requests = int(match.group(1))
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        load.rps = float(match.group(1))
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        setattr(load, f"p{percent}_ms", float(value) * _UNIT_MS[unit])
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        load.non_2xx = int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        load.socket_errors = sum(int(n) for n in match.groups())
    return load


def run_wrk(
    wrk: str, script: Path, port: int, args: argparse.Namespace, seconds: int, nonce: int
) -> tuple[Load, str]:
    argv = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s"]
    argv += ["--latency", "--timeout", "5s", "-s", str(script)]
    argv += [f"http://127.0.0.1:{port}{PATH}", "--", WEBHOOK_TOKEN, str(nonce)]
    answer = subprocess.run(argv, capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise RuntimeError(f"wrk failed ({answer.returncode}): {answer.stderr.strip()}")
    return parse_wrk(answer.stdout), answer.stdout


# --- one target -------------------------------------------------------------------------------


def bench_target(
    target: Target, wrk: str, script: Path, args: argparse.Namespace, nonces: list[int], run: int
) -> Outcome:
    outcome = Outcome(target=target.key, label=target.label, run=run)
    rows_before = asyncio.run(count_rows(target.table)) if target.table is not None else None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ph-bench-") as workdir:
        server = start_server(target, port, Path(workdir))
        try:
            wait_listening(port, server)
            status, text = preflight(port)
            if status == 404 and target.key == "a":
                outcome.skipped = f"no {PATH} route in the service yet (404)"
                return outcome
            if not 200 <= status < 300:
                outcome.skipped = f"preflight answered {status}: {text[:200]}"
                return outcome
            outcome.answered_2xx_total = 1
            if args.warmup > 0:
                warm, _ = run_wrk(wrk, script, port, args, args.warmup, nonces.pop())
                outcome.answered_2xx_total += warm.answered_2xx
            backends = asyncio.run(postgres_backends()) if target.table is not None else []
            postgres_before = {pid: process_cpu(pid) for pid in backends}
            cpu_before, busy_before = process_cpu(server.pid), machine_busy()
            load, raw = run_wrk(wrk, script, port, args, args.duration, nonces.pop())
            if load.requests:
                cpu = process_cpu(server.pid) - cpu_before
                outcome.cpu_ms_per_request = cpu * 1000 / load.requests
                if target.table is not None:
                    postgres = sum(
                        process_cpu(pid) - postgres_before.get(pid, 0.0)
                        for pid in asyncio.run(postgres_backends())
                    )
                    outcome.postgres_ms_per_request = postgres * 1000 / load.requests
            outcome.machine_busy = (machine_busy() - busy_before) / args.duration
            outcome.load = load
            outcome.answered_2xx_total += load.answered_2xx
            if args.verbose:
                print(raw)
        finally:
            # Stopped (gracefully) before counting: what was answered 2xx must be stored
            # by the time the process is gone.
            stop_server(server)
    if target.table is not None:
        rows_after = asyncio.run(count_rows(target.table))
        if rows_after is not None:
            outcome.stored_rows = rows_after - (rows_before or 0)
    if outcome.load.non_2xx:
        outcome.notes.append(f"{outcome.load.non_2xx} non-2xx answers")
    if outcome.load.socket_errors:
        outcome.notes.append(f"{outcome.load.socket_errors} socket errors")
    return outcome


def targets(database: str, run_queue: str, naive_queue: str) -> list[Target]:
    service_env = {
        "APP_ENV": "development",
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": run_queue,
        # wrk sends one header for every company's bodies: a shared token.
        "WEBHOOK_AUTH_TOKENS": f"bench-webhook-secret-{secrets.token_hex(8)}",
        "WEBHOOK_SHARED_TOKENS": WEBHOOK_TOKEN,
        "ADMIN_TOKEN": f"bench-admin-{secrets.token_hex(8)}",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        # Never called during ingest; set so development mode does not reach for a simulator.
        "PROCORE_CLIENT_ID": "bench-client",
        "PROCORE_CLIENT_SECRET": "bench-client-secret",
        "PROCORE_API_BASE": "http://127.0.0.1:9",
        "PROCORE_LOGIN_BASE": "http://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    bench_env = {
        "BENCH_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "BENCH_DATABASE_URL": database,
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_QUEUE_NAME": naive_queue,
    }
    return [
        Target("a", "receiver (app.main)", "app.main:app", service_env, "events"),
        Target("b", "bare FastAPI + pydantic", "bench.bare_app:app", bench_env, None),
        Target(
            "c",
            "naive ORM commit + enqueue",
            "bench.naive_app:app",
            bench_env,
            "naive_webhook_events",
        ),
        Target("r", "raw ASGI endpoint", "bench.raw_app:app", bench_env, None),
    ]


# --- report -----------------------------------------------------------------------------------


def medians(outcomes: list[Outcome]) -> dict[str, Load]:
    """Per server, the median over its rounds of req/s, p50 and p99 (each on its own)."""
    by_key: dict[str, list[Load]] = {}
    for o in outcomes:
        if o.load is not None:
            by_key.setdefault(o.target, []).append(o.load)
    return {
        key: Load(
            requests=round(statistics.median(x.requests for x in loads)),
            rps=statistics.median(x.rps for x in loads),
            p50_ms=statistics.median(x.p50_ms for x in loads),
            p99_ms=statistics.median(x.p99_ms for x in loads),
        )
        for key, loads in by_key.items()
    }


def round_ratios(outcomes: list[Outcome], a: str, other: str) -> list[float]:
    """a/other within each round (the two measured minutes apart, not across the run)."""
    by_run: dict[int, dict[str, float]] = {}
    for o in outcomes:
        if o.load is not None and o.load.rps:
            by_run.setdefault(o.run, {})[o.target] = o.load.rps
    return [r[a] / r[other] for _, r in sorted(by_run.items()) if a in r and other in r]


def report(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    """Print the table, the ratios and the durability check; False if an event was lost."""
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s (after {args.warmup}s "
        f"warm-up), one uvicorn process each: {' '.join(UVICORN_FLAGS[2:])}; "
        f"{args.runs} round(s), servers in turn"
    )
    print(
        f"{'':4}{'server':30}{'round':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms/req':>11}{'Postgres':>9}{'cores busy':>11}  notes"
    )
    for o in outcomes:
        if o.load is None:
            blank = f"{'-':>10}{'-':>9}{'-':>9}"
            print(f"({o.target}) {o.label:30}{o.run:>6}{blank}  skipped: {o.skipped}")
            continue
        notes = "; ".join(o.notes)
        cpu = "-" if o.cpu_ms_per_request is None else f"{o.cpu_ms_per_request:.3f}"
        busy = "-" if o.machine_busy is None else f"{o.machine_busy:.2f}"
        pg = "-" if o.postgres_ms_per_request is None else f"{o.postgres_ms_per_request:.3f}"
        print(
            f"({o.target}) {o.label:30}{o.run:>6}{o.load.rps:>10.0f}{o.load.p50_ms:>9.2f}"
            f"{o.load.p99_ms:>9.2f}{cpu:>11}{pg:>9}{busy:>11}  {notes}"
        )
    middle = medians(outcomes)
    labels = {o.target: o.label for o in outcomes}
    print()
    for key, load in middle.items():
        print(
            f"({key}) {labels[key]:30}{'median':>6}{load.rps:>10.0f}{load.p50_ms:>9.2f}"
            f"{load.p99_ms:>9.2f}"
        )
    print()
    a = middle.get("a")
    for other, goal in (("r", 0.3), ("b", 1.0), ("c", 3.0)):
        against = middle.get(other)
        if a and against and against.rps:
            ratio = a.rps / against.rps
            rounds = round_ratios(outcomes, "a", other)
            each = ", ".join(f"{r:.2f}" for r in rounds)
            print(
                f"a/{other} = {ratio:.2f}x of the medians (goal >= {goal:.1f}x); "
                f"round by round {each}, median {statistics.median(rounds):.2f}x"
            )
    if a:
        print(f"a p99 = {a.p99_ms:.2f} ms, median of the rounds   (goal < 50 ms)")
    print()
    durable = True
    for o in outcomes:
        if o.load is None or o.stored_rows is None:
            continue
        extra = o.stored_rows - o.answered_2xx_total
        verdict = "ok" if extra >= 0 else f"LOST {-extra}"
        print(
            f"({o.target}) round {o.run}: answered 2xx {o.answered_2xx_total}, rows stored "
            f"{o.stored_rows}: {verdict}"
            + (f" (+{extra} cut off by wrk before their answer arrived)" if extra > 0 else "")
        )
        durable = durable and extra >= 0
    return durable


def save(outcomes: list[Outcome], args: argparse.Namespace) -> Path:
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    results = []
    for o in outcomes:
        record = asdict(o)
        if o.load:
            record["load"]["answered_2xx"] = o.load.answered_2xx
        results.append(record)
    payload = {
        "args": vars(args),
        "uvicorn_flags": list(UVICORN_FLAGS),
        "results": results,
        "medians": {key: asdict(load) for key, load in medians(outcomes).items()},
        "round_ratios": {other: round_ratios(outcomes, "a", other) for other in ("r", "b", "c")},
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before it")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        # On two cores a second wrk thread takes CPU from the server being measured.
        default=max(1, min(2, (os.cpu_count() or 2) - 1)),
        help="wrk threads (default: one less than the cores, at most 2)",
    )
    parser.add_argument("--only", default="abcr", help="which servers, e.g. 'ar'")
    parser.add_argument("--runs", type=int, default=3, help="rounds of every server, in turn")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    wrk = ensure_wrk()
    load_1m = os.getloadavg()[0]
    print(
        f"bench: run {RUN_ID}; {os.cpu_count()} cores; load average {load_1m:.2f}; "
        f"Python {sys.version.split()[0]}"
    )
    if load_1m > 0.5:
        print("bench: warning: the machine is busy; the numbers will be noisy")
    run_queue, naive_queue = f"{RUN_ID}:queue", f"{RUN_ID}:naive-queue"
    outcomes: list[Outcome] = []
    nonces = secrets.SystemRandom().sample(range(32**4), 8 * len(args.only) * args.runs + 8)
    asyncio.run(create_database())
    try:
        migrate()
        with tempfile.TemporaryDirectory(prefix="ph-bench-wrk-") as scripts:
            script = Path(scripts) / "procore_v2.lua"
            script.write_text(WRK_SCRIPT)
            chosen = [
                t for t in targets(database_url(), run_queue, naive_queue) if t.key in args.only
            ]
            for run in range(1, args.runs + 1):
                for target in chosen:
                    print(f"bench: ({target.key}) {target.label}, round {run} ...", flush=True)
                    outcomes.append(bench_target(target, wrk, script, args, nonces, run))
                    if target.table is not None:
                        asyncio.run(checkpoint())
                        time.sleep(2)
        durable = report(outcomes, args)
        print(f"\nbench: results saved to {save(outcomes, args).relative_to(ROOT)}")
    finally:
        removed = asyncio.run(forget_queues([run_queue, naive_queue]))
        asyncio.run(drop_database())
        print(f"bench: dropped database {DATABASE}; removed {removed} Redis keys")
    return 0 if durable else 1


if __name__ == "__main__":
    sys.exit(main())
