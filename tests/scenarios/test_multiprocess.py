"""Concurrency: four real worker processes on the storm scenario.

DESIGN.md "Gates": while a gate is parked, exactly one probe per gate is in flight across all
workers, and the calls an uninstalled company receives before its gate parks are bounded (with
the in-process guard: PARK_THRESHOLD per worker process, plus the diagnosis). Four
`python -m app.cli worker` processes share one database and one Redis queue; the simulator
(in this process, on a real port) counts every call and the most calls in flight at once per
company.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from app.runtime import Runtime
from simulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimulatorServer
from tests.conftest import ENCRYPTION_KEY, RUN_ID
from tests.factories import Spec, statuses, store_events
from tests.harness import sim_calls, sim_stats

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# A Redis db of its own: arq names cron jobs `cron:<function>:<tick>` whatever the queue, so
# workers of another suite on the same db would take this test's dispatcher/probe ticks.
REDIS_URL = os.environ.get("TEST_MP_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = f"{RUN_ID}:multiprocess:queue"
PROCESSES = 4
PARK_THRESHOLD = 3
UNINSTALLED, INSTALLED = 33, 31
PROBE_WINDOW_S = 10.0
STOP_GRACE_S = 10.0


def worker_env(database_url: str, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCORE_", "DATABASE_"))}
    env.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "DATABASE_POOL_SIZE": "5",
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": QUEUE,
            "PROCORE_API_BASE": base_url,
            "PROCORE_LOGIN_BASE": base_url,
            "PROCORE_CLIENT_ID": DEFAULT_CLIENT_ID,
            "PROCORE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "DISPATCH_INTERVAL_SECONDS": "1",
            "DISPATCH_LEASE_SECONDS": "5",
            "PROCESSING_LEASE_SECONDS": "10",
            # Small jobs: the first wave of the storm reaches every process.
            "JOB_BATCH_SIZE": "10",
            "PARK_THRESHOLD": str(PARK_THRESHOLD),
            "PROBE_BASE_SECONDS": "0.2",
            "PROBE_CAP_SECONDS": "1",
            "RETRY_BASE_SECONDS": "0.05",
            "RETRY_CAP_SECONDS": "0.3",
            "WORKER_HEARTBEAT_SECONDS": "1",
            "WORKER_METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "console",
        }
    )
    return env


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all, then SIGKILL whatever is still running after the grace period."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.asynccontextmanager
async def worker_processes(
    env: dict[str, str], logs: Path, count: int
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(count):
            with (logs / f"worker-{n}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app.cli", "worker"],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield procs
    finally:
        await asyncio.to_thread(_stop, procs)


async def _delete_keys(started: float) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"*{RUN_ID}*"):
            await client.delete(key)
        # arq's cron job keys carry no queue name, only the tick (ms): remove this test's.
        async for key in client.scan_iter(match="arq:*cron:*"):
            with contextlib.suppress(ValueError):
                if int(key.rsplit(b":", 1)[1]) / 1000 >= started - 2:
                    await client.delete(key)
    finally:
        await client.aclose()


async def _scalar(runtime: Runtime, sql: str, **params: Any) -> Any:
    async with runtime.sessions() as session:
        return (await session.execute(text(sql), params)).scalar()


async def _wait(
    check: Callable[[], Awaitable[bool]],
    procs: list[subprocess.Popen[bytes]],
    logs: Path,
    *,
    timeout: float,
    what: str,
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        dead = [p.returncode for p in procs if p.poll() is not None]
        if dead:
            tails = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log"))
            raise AssertionError(
                f"a worker process exited {dead} while waiting for {what}\n{tails}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


async def test_four_processes_keep_one_probe_in_flight_per_gate(
    db: Runtime,
    database_url: str,
    simulator: SimulatorServer,
    sim: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    rng = random.Random(33)
    created = await sim.post(
        "/_sim/events",
        json={
            "company_id": UNINSTALLED,
            "project_id": 920,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": 100,
        },
    )
    created.raise_for_status()
    assert created.json()["hooks"] == 0
    rfis: list[int] = created.json()["resource_ids"]
    storm = [Spec("RFIs", rng.choice(rfis), UNINSTALLED, 920) for _ in range(400)]
    ours = [Spec("RFIs", rid, INSTALLED, 900) for rid in (5150, 5151) for _ in range(10)]

    started = time.time()
    env = worker_env(database_url, simulator.base_url)
    try:
        async with worker_processes(env, tmp_path, PROCESSES) as procs:

            async def all_beating() -> bool:
                beats = await _scalar(db, "SELECT count(*) FROM worker_heartbeats")
                return int(beats) >= PROCESSES

            await _wait(all_beating, procs, tmp_path, timeout=30, what="4 worker heartbeats")

            # The storm arrives while all four processes are idle and polling.
            await store_events(db, storm + ours)

            calls_at_park: dict[str, Any] = {}

            async def parked() -> bool:
                state = await _scalar(
                    db,
                    "SELECT state FROM gates WHERE scope_key = :k",
                    k=f"company:{UNINSTALLED}",
                )
                if str(state) != "parked":
                    return False
                calls_at_park.update(await sim_calls(sim, company_id=UNINSTALLED))
                return True

            await _wait(parked, procs, tmp_path, timeout=20, what="company 33's gate parked")

            async def diagnosed_and_settled() -> bool:
                diagnosis = await _scalar(
                    db,
                    "SELECT diagnosis FROM gates WHERE scope_key = :k",
                    k=f"company:{UNINSTALLED}",
                )
                busy = await _scalar(
                    db,
                    "SELECT count(*) FROM events WHERE company_id = :c AND status = 'processing'",
                    c=UNINSTALLED,
                )
                return diagnosis == "not_installed" and int(busy) == 0

            await _wait(
                diagnosed_and_settled, procs, tmp_path, timeout=20, what="diagnosis not_installed"
            )

            # Detection bound: each process stops calling after PARK_THRESHOLD refusals.
            before = await sim_calls(sim, company_id=UNINSTALLED)
            fetches = sum(n for route, n in before["by_route"].items() if "/rfis/" in route)
            diagnosis_calls = int(
                await _scalar(
                    db,
                    "SELECT count(*) FROM procore_calls"
                    " WHERE company_id = :c AND purpose = 'diagnose'",
                    c=UNINSTALLED,
                )
            )
            bound = PARK_THRESHOLD * PROCESSES
            assert fetches <= bound, (fetches, before)
            assert calls_at_park["total"] <= bound + diagnosis_calls, (
                calls_at_park,
                diagnosis_calls,
            )

            # The installed company is served meanwhile.
            async def ours_done() -> bool:
                n = await _scalar(
                    db,
                    "SELECT count(*) FROM events WHERE company_id = :c AND status = 'done'",
                    c=INSTALLED,
                )
                return int(n) == len(ours)

            await _wait(ours_done, procs, tmp_path, timeout=20, what="company 31's events done")

            # Probing: never two probes to one company at once, across the four processes.
            (await sim.delete("/_sim/calls")).raise_for_status()
            await asyncio.sleep(PROBE_WINDOW_S)
            stats = await sim_stats(sim)
            probing = await sim_calls(sim, company_id=UNINSTALLED)
            by_company = stats["max_in_flight"]["by_company"]
            assert all(isinstance(key, str) for key in by_company), by_company
            assert by_company.get(str(UNINSTALLED)) == 1, stats["max_in_flight"]
            assert probing["total"] > 1, probing
            assert not any("/rfis/" in route for route in probing["by_route"]), probing
            assert (
                await _scalar(
                    db, "SELECT state FROM gates WHERE scope_key = :k", k=f"company:{UNINSTALLED}"
                )
                == "parked"
            )

            # Install: the next probe opens the gate and every parked event is served.
            answer = await sim.put(f"/_sim/companies/{UNINSTALLED}", json={"installed": True})
            answer.raise_for_status()

            async def everything_done() -> bool:
                counts = await statuses(db)
                return counts == {"done": len(storm) + len(ours)}

            await _wait(everything_done, procs, tmp_path, timeout=30, what="every event done")
    finally:
        await _delete_keys(started)
