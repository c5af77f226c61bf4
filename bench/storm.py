"""Storm benchmark: a webhook storm for a company that has not installed the app.

    python -m bench.storm [--events 10000] [--rfis 2000] [--hour-seconds 3.6] [--hours 24]
    python -m bench.storm --days 30 [--hour-seconds 0.36]     # the dormancy run

10,000 events for company 33 (not installed in the simulator's seed) over 24 *simulated* hours,
time compressed: one simulated hour lasts `--hour-seconds` real seconds (3.6 s: scale 1/1000,
so 24 h = 86.4 s). The scale applies to the gate settings (PROBE_BASE_SECONDS = 30 s·scale,
PROBE_CAP_SECONDS = 3600 s·scale, PARK_WINDOW_SECONDS = 600 s·scale) and to the naive policy's
backoff. Three phases, one simulator process (counters zeroed between phases):

  (A) naive     a plain arq retry policy: one job per event that GETs the RFI with httpx (token
                fetched once from /oauth/token) and on 401/403/429/5xx raises
                `arq.Retry(defer=30 s·scale·2^try)`, max_tries=5.
  (B) service   one real worker process (`python -m app.cli worker`) against a bench database
                holding the 10,000 events (`queued`, as the receiver stores them), for the
                compressed 24 h; the simulator's count of calls to company 33, broken down by
                purpose from the call audit (`procore_calls.purpose`: fetch/diagnose/probe).
  (C) drain     company 33 installs the app; Procore's rate-limit shape (spike window 10 s,
                500 per window per company, hourly out of the way); the same worker process
                notices (next probe), opens the gate and drains the parked backlog.
                Measured: calls/s against the limit, the share of 429s, time until every event
                is final, none lost.

`--days N` (the dormancy run) replaces (A) by the same factor measured over 24 h, runs (B) for
N simulated days, and before (C) sends one webhook for company 33 after the install (stored as
the receiver stores it: parked under the gate that holds it, `app.gates.scopes`): the dormant
gate wakes on it, probes once and opens. Measured: every call to company 33 in the N days, and
how long after that webhook the gate opened and the first event was done.

Targets: (A)/(B) ≥ 5,000 over 24 h; 30 days: ≤ 40 calls to company 33 in all and work resumed
within one webhook after the install; drain ≥ 80 % of the limit with < 1 % 429s. The run
exits 1 only on errors, not on missed targets. It makes its own database (migrated) and Redis
keys (queue names carrying the run id, Redis db 12 by default: arq's cron job ids are not
namespaced by queue, so sharing a db with another running worker would lose dispatcher ticks)
and removes them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from arq import Retry
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker, func
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from app import migrate
from app.gates.policy import GateView, Policy, on_probe_failure, park, probe_delay
from app.gates.scopes import holding_gate_sql
from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_STORM_REDIS_URL", "redis://127.0.0.1:6379/12")
RUN_ID = f"ph-bench-storm-{os.getpid()}-{secrets.token_hex(3)}"
DATABASE = RUN_ID.replace("-", "_")
COMPANY, PROJECT = 33, 920
# Real-world settings the time scale shrinks.
PROBE_BASE_S, PROBE_CAP_S, PARK_WINDOW_S = 30.0, 3600.0, 600.0
# The service's defaults (DORMANT_AFTER_SECONDS, PROBE_BUDGET_PER_HOUR), shrunk likewise.
DORMANT_AFTER_S, PROBE_BUDGET_PER_H = 900.0, 180
NAIVE_BASE_S, NAIVE_MAX_TRIES = 30.0, 5
GENEROUS = {"hourly": 10**9, "hourly_window_s": 3600, "spike": 10**9, "spike_window_s": 10}
FINAL = ("done", "skipped", "dead")
STOP_GRACE_S = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_dsn(database: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}"


def _stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after the grace period."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.asynccontextmanager
async def simulator_process(logs: Path) -> AsyncIterator[str]:
    """`python -m simulator` in a process of its own (never competes with this loop)."""
    port = _free_port()
    with (logs / "simulator.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                try:
                    (await client.get(f"{base_url}/_sim/stats")).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the simulator did not start") from None
                    await asyncio.sleep(0.1)
        yield base_url
    finally:
        await asyncio.to_thread(_stop, proc, 10)


# --- (A) the naive policy -------------------------------------------------------------------


async def naive_fetch(ctx: dict[str, Any], project_id: int, rfi_id: int) -> int:
    """What one writes first: fetch, and on a refusal or a failure let arq retry later."""
    http: httpx.AsyncClient = ctx["http"]
    answer = await http.get(
        f"/rest/v1.0/projects/{project_id}/rfis/{rfi_id}",
        headers={"Authorization": f"Bearer {ctx['token']}", "Procore-Company-Id": str(COMPANY)},
    )
    if answer.status_code in (401, 403, 429) or answer.status_code >= 500:
        raise Retry(defer=ctx["naive_base_s"] * 2 ** ctx["job_try"])
    return answer.status_code


async def _naive_startup(ctx: dict[str, Any]) -> None:
    ctx["http"] = httpx.AsyncClient(
        base_url=ctx["base_url"],
        timeout=20,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
    )


async def _naive_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].aclose()


async def fetch_token(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        answer = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            },
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token


@dataclass(slots=True)
class NaiveResult:
    events: int
    calls: int
    elapsed_s: float
    jobs_failed: int
    by_status: dict[str, int]


async def run_naive(
    base_url: str, sim: httpx.AsyncClient, rfis: list[int], scale: float
) -> NaiveResult:
    queue = f"{RUN_ID}:naive"
    settings = RedisSettings.from_dsn(REDIS_URL)
    pool = await create_pool(settings, default_queue_name=queue)
    try:
        for start in range(0, len(rfis), 500):
            await asyncio.gather(
                *(
                    pool.enqueue_job("naive_fetch", PROJECT, rid, _job_id=f"{queue}:{n}")
                    for n, rid in enumerate(rfis[start : start + 500], start)
                )
            )
    finally:
        await pool.aclose()
    worker = Worker(
        functions=[func(naive_fetch, name="naive_fetch", max_tries=NAIVE_MAX_TRIES)],
        queue_name=queue,
        redis_settings=settings,
        ctx={
            "base_url": base_url,
            "token": await fetch_token(base_url),
            "naive_base_s": NAIVE_BASE_S * scale,
        },
        on_startup=_naive_startup,
        on_shutdown=_naive_shutdown,
        max_jobs=100,
        keep_result=0,
        poll_delay=0.05,
        burst=True,
        handle_signals=False,
    )
    (await sim.delete("/_sim/calls")).raise_for_status()
    started = time.perf_counter()
    try:
        await worker.async_run()
    finally:
        elapsed = time.perf_counter() - started
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # arq closes with redis' close()
            await worker.close()
    calls = (await sim.get("/_sim/calls", params={"company_id": COMPANY})).json()
    return NaiveResult(
        events=len(rfis),
        calls=int(calls["total"]),
        elapsed_s=elapsed,
        jobs_failed=worker.jobs_failed,
        by_status=dict(calls["by_status"]),
    )


# --- (B) and (C) the service ----------------------------------------------------------------


def worker_env(database: str, base_url: str, scale: float, *, sweep: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCORE_", "DATABASE_"))}
    env.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": _pg_dsn(database).replace("postgresql://", "postgresql+asyncpg://"),
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": f"{RUN_ID}:queue",
            "PROCORE_API_BASE": base_url,
            "PROCORE_LOGIN_BASE": base_url,
            "PROCORE_CLIENT_ID": DEFAULT_CLIENT_ID,
            "PROCORE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "DISPATCH_INTERVAL_SECONDS": "1",
            "PROBE_BASE_SECONDS": f"{PROBE_BASE_S * scale:g}",
            "PROBE_CAP_SECONDS": f"{PROBE_CAP_S * scale:g}",
            "PARK_WINDOW_SECONDS": f"{PARK_WINDOW_S * scale:g}",
            "DORMANT_AFTER_SECONDS": f"{DORMANT_AFTER_S * scale:g}",
            # The budget is per real hour: a compressed hour gets a simulated hour's share.
            "PROBE_BUDGET_PER_HOUR": str(max(1, round(PROBE_BUDGET_PER_H / scale))),
            # The service account's /companies sweep (install discovery), hourly at this
            # scale; off (the default, real hours) where only a webhook may wake the gate.
            "HOOKS_SYNC_INTERVAL_SECONDS": f"{max(1.0, 3600 * scale) if sweep else 3600:g}",
            "WORKER_METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
    )
    return env


async def store_events(conn: asyncpg.Connection, rfis: list[int]) -> None:
    """As the receiver stores them: `queued`, in received (dedupe key) order."""
    await conn.execute(
        """
        INSERT INTO events (dedupe_key, payload_version, company_id, project_id, resource_name,
            resource_id, event_type, reason, occurred_at, raw, status)
        SELECT 'storm-' || lpad(n::text, 8, '0'), 'v2', $1, $2, 'RFIs', rid, 'update',
            'update', now(), '{}'::jsonb, 'queued'
        FROM unnest($3::bigint[]) WITH ORDINALITY AS t(rid, n)
        """,
        COMPANY,
        PROJECT,
        rfis,
    )


async def statuses(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status::text AS s, count(*) AS n FROM events GROUP BY 1")
    return {r["s"]: int(r["n"]) for r in rows}


async def gate(conn: asyncpg.Connection) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT state::text AS state, parked_at, opened_at, probe_attempt, diagnosis"
        " FROM gates WHERE scope_key = $1",
        f"company:{COMPANY}",
    )
    return row


async def audit_by_purpose(conn: asyncpg.Connection, since: datetime | None) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT purpose, count(*) AS n FROM procore_calls WHERE company_id = $1"
        " AND ($2::timestamptz IS NULL OR at >= $2) GROUP BY 1",
        COMPANY,
        since,
    )
    return {r["purpose"]: int(r["n"]) for r in rows}


@dataclass(slots=True)
class ServiceResult:
    calls: int
    by_status: dict[str, int]
    by_purpose: dict[str, int]
    parked_after_s: float | None
    calls_at_park: int | None
    probe_attempt: int
    statuses: dict[str, int]
    total_all_companies: int


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self._log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker process exited ({self.proc.returncode}):\n{tail}")

    async def stop(self) -> None:
        await asyncio.to_thread(_stop, self.proc)


async def run_service(
    conn: asyncpg.Connection, sim: httpx.AsyncClient, worker: WorkerProcess, duration_s: float
) -> ServiceResult:
    started = time.monotonic()
    parked_after: float | None = None
    calls_at_park: int | None = None
    while (elapsed := time.monotonic() - started) < duration_s:
        worker.check()
        row = await gate(conn)
        if parked_after is None and row is not None and row["state"] == "parked":
            parked_after = elapsed
            snapshot = await sim.get("/_sim/calls", params={"company_id": COMPANY})
            calls_at_park = int(snapshot.json()["total"])
        await asyncio.sleep(min(0.25, max(0.0, duration_s - elapsed)))
    calls = (await sim.get("/_sim/calls", params={"company_id": COMPANY})).json()
    everyone = (await sim.get("/_sim/calls")).json()
    row = await gate(conn)
    return ServiceResult(
        calls=int(calls["total"]),
        by_status=dict(calls["by_status"]),
        by_purpose=await audit_by_purpose(conn, None),
        parked_after_s=parked_after,
        calls_at_park=calls_at_park,
        probe_attempt=int(row["probe_attempt"]) if row is not None else 0,
        statuses=await statuses(conn),
        total_all_companies=int(everyone["total"]),
    )


@dataclass(slots=True)
class DrainResult:
    limit_per_s: float
    noticed_after_s: float | None = None
    final_after_s: float | None = None
    drain_s: float | None = None
    audited: int = 0
    call_window_s: float | None = None
    by_purpose: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_route: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    mirrored: int = 0
    timed_out: bool = False


async def run_drain(
    conn: asyncpg.Connection,
    sim: httpx.AsyncClient,
    worker: WorkerProcess,
    *,
    spike: int,
    spike_window_s: float,
    events: int,
    rfis: list[int],
    timeout_s: float,
) -> DrainResult:
    limits = {
        "hourly": 10**9,
        "hourly_window_s": 3600.0,
        "spike": spike,
        "spike_window_s": spike_window_s,
    }
    (await sim.put("/_sim/rate_limit", json=limits)).raise_for_status()
    rate_limited_before = int((await sim.get("/_sim/stats")).json()["rate_limited"])
    (await sim.delete("/_sim/calls")).raise_for_status()
    installed_at = datetime.now(UTC)
    (await sim.put(f"/_sim/companies/{COMPANY}", json={"installed": True})).raise_for_status()
    result = DrainResult(limit_per_s=spike / spike_window_s)
    deadline = time.monotonic() + timeout_s
    while True:
        worker.check()
        counts = await statuses(conn)
        if sum(counts.get(s, 0) for s in FINAL) >= events:
            break
        if time.monotonic() > deadline:
            result.timed_out = True
            break
        await asyncio.sleep(0.5)
    row = await gate(conn)
    if row is not None and row["opened_at"] is not None and row["opened_at"] >= installed_at:
        result.noticed_after_s = (row["opened_at"] - installed_at).total_seconds()
    last_final = await conn.fetchval("SELECT max(finished_at) FROM events")
    if last_final is not None and not result.timed_out:
        result.final_after_s = (last_final - installed_at).total_seconds()
        if result.noticed_after_s is not None:
            result.drain_s = result.final_after_s - result.noticed_after_s
    # Every call to the company after the install (the limit counts them all), from the audit.
    window = await conn.fetchrow(
        "SELECT count(*) AS n, min(at) AS first, max(at) AS last FROM procore_calls"
        " WHERE company_id = $1 AND at >= $2",
        COMPANY,
        installed_at,
    )
    assert window is not None
    result.audited = int(window["n"])
    if window["n"] > 1:
        result.call_window_s = (window["last"] - window["first"]).total_seconds()
    result.by_purpose = await audit_by_purpose(conn, installed_at)
    calls = (await sim.get("/_sim/calls", params={"company_id": COMPANY})).json()
    result.calls = int(calls["total"])
    result.by_status = dict(calls["by_status"])
    result.by_route = dict(calls["by_route"])
    stats = (await sim.get("/_sim/stats")).json()
    result.rate_limited = int(stats["rate_limited"]) - rate_limited_before
    result.statuses = await statuses(conn)
    result.mirrored = int(
        await conn.fetchval(
            "SELECT count(*) FROM resources WHERE company_id = $1 AND resource_name = 'RFIs'"
            " AND resource_id = ANY($2::bigint[]) AND data IS NOT NULL",
            COMPANY,
            sorted(set(rfis)),
        )
    )
    return result


def modelled_probes(hours: float, rng_seed: int = 7, trials: int = 200) -> float:
    """Probes in `hours` at true scale under the pure policy without dormancy (no tick
    granularity), as the service probed before it had a dormant state."""
    policy = Policy(probe_base_s=PROBE_BASE_S, probe_cap_s=PROBE_CAP_S)
    rng = random.Random(rng_seed)
    total = 0
    for _ in range(trials):
        t, attempt = 0.0, 0
        while True:
            t += probe_delay(attempt, policy, rng)
            if t > hours * 3600:
                break
            total += 1
            attempt += 1
    return total / trials + 1  # + the diagnosis right after parking


def modelled_dormant_probes(rng_seed: int = 7, trials: int = 200) -> float:
    """Calls a parked gate makes at true scale under the pure policy until it is dormant
    (the diagnosis included); after that, none until a wake."""
    policy = Policy(
        probe_base_s=PROBE_BASE_S,
        probe_cap_s=PROBE_CAP_S,
        dormant_after=timedelta(seconds=DORMANT_AFTER_S),
    )
    rng = random.Random(rng_seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    total = 0
    for _ in range(trials):
        gate = park(GateView(), t0, policy, rng, pending=True)
        while gate.next_probe_at is not None:
            gate = on_probe_failure(gate, gate.next_probe_at, policy, rng)
            total += 1
    return total / trials


@dataclass(slots=True)
class WakeResult:
    opened_after_s: float | None = None
    first_done_after_s: float | None = None
    calls_before: int = 0
    calls_to_open: int = 0
    transitions: list[str] = field(default_factory=list)


# One webhook as the receiver stores it: parked under the gate that holds it, if any.
_RECEIVED = f"""
    INSERT INTO events (dedupe_key, payload_version, company_id, project_id, resource_name,
        resource_id, event_type, reason, occurred_at, raw, status, gate_id, finished_at)
    SELECT $1, 'v2', $2, $3, 'RFIs', $4, 'update', 'update', now(), '{{}}'::jsonb,
        CASE WHEN g.id IS NULL THEN 'queued' ELSE 'parked' END, g.id,
        CASE WHEN g.id IS NULL THEN NULL ELSE now() END
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL ({holding_gate_sql(company="$2", project="$3", resource="'RFIs'")}) AS g
        ON true
"""  # noqa: S608


async def run_wake(
    conn: asyncpg.Connection, sim: httpx.AsyncClient, worker: WorkerProcess, rfi: int
) -> WakeResult:
    """Install company 33, then one webhook: the dormant gate wakes, probes, opens."""
    result = WakeResult(
        calls_before=int(
            (await sim.get("/_sim/calls", params={"company_id": COMPANY})).json()["total"]
        )
    )
    (await sim.put(f"/_sim/companies/{COMPANY}", json={"installed": True})).raise_for_status()
    await asyncio.sleep(2)  # nothing happens by itself: the gate sleeps
    sent = time.monotonic()
    await conn.execute(_RECEIVED, "storm-wake", COMPANY, PROJECT, rfi)
    deadline = sent + 60
    while time.monotonic() < deadline:
        worker.check()
        row = await gate(conn)
        if result.opened_after_s is None and row is not None and row["state"] == "open":
            result.opened_after_s = time.monotonic() - sent
            calls = await sim.get("/_sim/calls", params={"company_id": COMPANY})
            result.calls_to_open = int(calls.json()["total"]) - result.calls_before
        done = await conn.fetchval("SELECT count(*) FROM events WHERE status = 'done'")
        if done:
            result.first_done_after_s = time.monotonic() - sent
            break
        await asyncio.sleep(0.1)
    result.transitions = [
        str(r["kind"])
        for r in await conn.fetch(
            "SELECT kind FROM gate_transitions WHERE company_id = $1 ORDER BY id", COMPANY
        )
    ]
    return result


# --- the run --------------------------------------------------------------------------------


def _pct(part: float, whole: float) -> str:
    return "n/a" if whole <= 0 else f"{100 * part / whole:.2f} %"


def _num(value: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


async def run(args: argparse.Namespace) -> int:
    if args.days:
        args.hours = args.days * 24.0
    scale = args.hour_seconds / 3600.0
    duration = args.hours * args.hour_seconds
    rng = random.Random(args.seed)
    logging.getLogger("arq").setLevel(logging.ERROR)  # one line per exhausted naive job
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    redis = Redis.from_url(REDIS_URL)
    run_started = time.time()
    worker: WorkerProcess | None = None
    logs = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    code = 0
    try:
        url = _pg_dsn(DATABASE).replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(_pg_dsn(DATABASE))
        async with (
            simulator_process(logs) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=60) as sim,
        ):
            (await sim.put("/_sim/rate_limit", json=GENEROUS)).raise_for_status()
            company = (await sim.get("/_sim/companies")).json()
            if any(c["id"] == COMPANY and c["installed"] for c in company):
                raise RuntimeError(f"company {COMPANY} is installed in the simulator's seed")
            created = await sim.post(
                "/_sim/events",
                json={
                    "company_id": COMPANY,
                    "project_id": PROJECT,
                    "resource_name": "RFIs",
                    "event_type": "create",
                    "count": args.rfis,
                },
            )
            created.raise_for_status()
            if created.json()["hooks"]:
                raise RuntimeError("the simulator has webhooks registered: creation not silent")
            resource_ids: list[int] = created.json()["resource_ids"]
            storm = [rng.choice(resource_ids) for _ in range(args.events)]

            print(
                f"storm: {args.events} events for company {COMPANY} (not installed), "
                f"{len(set(storm))} distinct RFIs in project {PROJECT}; load average "
                f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs"
            )
            print(
                f"time scale: 1 simulated hour = {args.hour_seconds:g} s real (scale "
                f"{scale:g}); {args.hours:g} h = {duration:.1f} s. PROBE_BASE_SECONDS="
                f"{PROBE_BASE_S * scale:g}, PROBE_CAP_SECONDS={PROBE_CAP_S * scale:g}, "
                f"PARK_WINDOW_SECONDS={PARK_WINDOW_S * scale:g}; naive backoff "
                f"{NAIVE_BASE_S * scale:g} s·2^try, max_tries={NAIVE_MAX_TRIES}"
            )

            # (A) naive
            naive_events = min(args.naive_events or args.events, args.events)
            print(f"(A) naive arq retry policy on {naive_events} events ...", flush=True)
            naive = await run_naive(base_url, sim, storm[:naive_events], scale)
            factor = args.events / naive_events
            naive_calls = naive.calls * factor
            backoff_h = sum(NAIVE_BASE_S * 2**t for t in range(1, NAIVE_MAX_TRIES)) / 3600

            # (B) service
            (await sim.delete("/_sim/calls")).raise_for_status()
            await store_events(conn, storm)
            print(f"(B) the service, one worker process, {duration:.1f} s ...", flush=True)
            env = worker_env(DATABASE, base_url, scale, sweep=not args.days)
            worker = WorkerProcess(env, logs / "worker.log")
            service = await run_service(conn, sim, worker, duration)
            wake: WakeResult | None = None
            if args.days:
                print(f"(W) install company {COMPANY}, then one webhook ...", flush=True)
                wake = await run_wake(conn, sim, worker, storm[0])

            # (C) install, drain
            print(
                f"(C) install company {COMPANY}; rate limit {args.spike} per "
                f"{args.spike_window:g} s; draining ...",
                flush=True,
            )
            drain = await run_drain(
                conn,
                sim,
                worker,
                spike=args.spike,
                spike_window_s=args.spike_window,
                events=args.events + (1 if wake is not None else 0),
                rfis=storm,
                timeout_s=args.drain_timeout,
            )
            await worker.stop()
            await conn.close()

        ratio = naive_calls / service.calls if service.calls else math.inf
        probes = service.by_purpose.get("probe", 0)
        parked_sim_min = (
            None if service.parked_after_s is None else service.parked_after_s / scale / 60
        )
        expected = args.events + (1 if wake is not None else 0)
        none_lost = drain.statuses.get("done") == expected
        print()
        print(f"(A) vs (B): calls to company {COMPANY} over {args.hours:g} simulated hours")
        scaled = (
            ""
            if factor == 1
            else f" (measured {naive.calls} on {naive_events} events, x{factor:g})"
        )
        _table(
            [
                (
                    "naive arq retry (max_tries=5)",
                    f"{naive_calls:,.0f} calls{scaled}; {naive.elapsed_s:.1f} s real; its "
                    f"backoff ends after {backoff_h * 60:.0f} simulated min; statuses "
                    f"{naive.by_status}; jobs failed {naive.jobs_failed}",
                ),
                (
                    "this service",
                    f"{service.calls:,} calls; statuses {service.by_status}",
                ),
                (
                    "  by purpose (call audit)",
                    ", ".join(f"{k} {v}" for k, v in sorted(service.by_purpose.items())) or "-",
                ),
                (
                    "  parked after",
                    f"{_num(service.parked_after_s, '.2f', ' s')} real "
                    f"({_num(parked_sim_min, '.1f', ' simulated min')}); simulator count "
                    f"at that moment {_num(service.calls_at_park, 'd')}",
                ),
                (
                    "  probes",
                    f"{probes} (gate probe_attempt {service.probe_attempt}); at true scale the "
                    f"pure policy makes ≈{modelled_dormant_probes():.1f} calls (diagnosis "
                    f"incl.) before the gate is dormant; without dormancy it made "
                    f"≈{modelled_probes(args.hours):.0f} in {args.hours:g} h",
                ),
                (f"  events after {args.hours:g} h", str(service.statuses)),
                ("  all companies (incl. tokens)", f"{service.total_all_companies} calls"),
                (
                    "ratio naive / service",
                    f"{ratio:,.0f}x   (target ≥ 5,000x: {'met' if ratio >= 5000 else 'MISSED'})",
                ),
            ]
        )
        if wake is not None:
            print()
            print(f"(W) {args.days:g} simulated days, then the install and one webhook")
            _table(
                [
                    (
                        f"calls to {COMPANY} in {args.days:g} days",
                        f"{wake.calls_before:,} (target ≤ 40: "
                        f"{'met' if wake.calls_before <= 40 else 'MISSED'})",
                    ),
                    (
                        "after the install, before the webhook",
                        "no call (the gate is dormant; nothing tells it)",
                    ),
                    (
                        "webhook → gate open",
                        f"{_num(wake.opened_after_s, '.2f', ' s')}; calls to {COMPANY} from "
                        f"the install to the gate open: {wake.calls_to_open}",
                    ),
                    (
                        "webhook → first event done",
                        f"{_num(wake.first_done_after_s, '.2f', ' s')} (target: within one "
                        f"webhook: {'met' if wake.first_done_after_s is not None else 'MISSED'})",
                    ),
                    ("gate transitions (feed)", " → ".join(wake.transitions)),
                ]
            )
        print()
        print(f"(C) after install: drain of {args.events} parked events")
        rate = drain.audited / drain.call_window_s if drain.call_window_s else None
        limited = drain.by_status.get("429", 0)
        _table(
            [
                (
                    "rate limit",
                    f"{args.spike} per {args.spike_window:g} s per company "
                    f"= {drain.limit_per_s:g} calls/s; hourly {10**9:,}",
                ),
                (
                    "install noticed (gate open)",
                    f"{_num(drain.noticed_after_s, '.2f', ' s')} after install (the gate is "
                    "dormant: the /companies sweep or a webhook wakes it)",
                ),
                (
                    "every event final",
                    f"{_num(drain.final_after_s, '.1f', ' s')} after install; "
                    f"drain {_num(drain.drain_s, '.1f', ' s')} after the gate opened",
                ),
                (
                    "calls to 33 (call audit)",
                    f"{drain.audited:,} in {_num(drain.call_window_s, '.1f', ' s')} (first to "
                    f"last); by purpose "
                    + ", ".join(f"{k} {v:,}" for k, v in sorted(drain.by_purpose.items())),
                ),
                (
                    "calls/s vs limit",
                    f"{_num(rate, '.1f')} calls/s = "
                    f"{_pct(rate or 0, drain.limit_per_s)} of the limit (target ≥ 80 %: "
                    f"{'met' if rate and rate >= 0.8 * drain.limit_per_s else 'MISSED'})",
                ),
                (
                    "events/s (gate open → last final)",
                    _num(args.events / drain.drain_s if drain.drain_s else None, ".1f"),
                ),
                ("simulator calls to 33", f"{drain.calls:,}; statuses {drain.by_status}"),
                ("  by route", ", ".join(f"{k} {v:,}" for k, v in sorted(drain.by_route.items()))),
                (
                    "429 share",
                    f"{_pct(limited, drain.calls)} ({limited} of {drain.calls}; "
                    f"/_sim/stats rate_limited +{drain.rate_limited}) (target < 1 %: "
                    f"{'met' if drain.calls and limited < 0.01 * drain.calls else 'MISSED'})",
                ),
                (
                    "events",
                    f"{drain.statuses}; done {drain.statuses.get('done', 0)} of "
                    f"{expected}: {'none lost' if none_lost else 'NOT ALL DONE'}",
                ),
                ("storm RFIs mirrored", f"{drain.mirrored} of {len(set(storm))}"),
            ]
        )
        if args.spike_window < 5:
            print(
                "  note: X-Rate-Limit-Reset is whole unix seconds, so a client that waits for it "
                "loses up to 1 s per window\n  (a window costs its length + up to 1 s); Procore's "
                "spike window is 10 s (FACTS.md §5): try --spike 500 --spike-window 10"
            )
        if drain.timed_out:
            print(f"drain did not finish within {args.drain_timeout:g} s")
            code = 1
        if sum(drain.statuses.values()) != expected:
            print("ERROR: events were lost")
            code = 1
    except Exception:
        if worker is not None:
            print(f"worker log: {logs / 'worker.log'}", file=sys.stderr)
        raise
    finally:
        if worker is not None:
            await worker.stop()
        async for key in redis.scan_iter(match=f"*{RUN_ID}*"):
            await redis.delete(key)
        await _delete_cron_keys(redis, run_started, time.time() + 5)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.close()
    return code


async def _delete_cron_keys(redis: Redis, since: float, until: float) -> None:
    """arq names cron jobs `cron:<function>:<ms>` whatever the queue: remove this run's."""
    async for key in redis.scan_iter(match="arq:*cron:*"):
        try:
            stamp = int(key.rsplit(b":", 1)[1]) / 1000
        except ValueError:
            continue
        if since - 2 <= stamp <= until:
            await redis.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rfis", type=int, default=2_000)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument(
        "--days", type=float, default=0.0, help="the dormancy run: simulated days (e.g. 30)"
    )
    parser.add_argument(
        "--hour-seconds", type=float, default=3.6, help="real seconds per simulated hour"
    )
    parser.add_argument(
        "--naive-events",
        type=int,
        default=0,
        help="run the naive policy on this many events and scale up (default: all)",
    )
    parser.add_argument("--spike", type=int, default=500, help="drain: calls per spike window")
    parser.add_argument(
        "--spike-window", type=float, default=10.0, help="seconds (Procore's is 10)"
    )
    parser.add_argument("--drain-timeout", type=float, default=1200.0)
    parser.add_argument("--seed", type=int, default=20261129)
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
