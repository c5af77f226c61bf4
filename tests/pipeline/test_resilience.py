"""Load and failure: rate limits, fan-out storms, a killed worker, a flushed Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import text

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import RUN_ID
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import running_worker, sim_calls, sim_stats, start_worker, wait_for
from tests.pipeline.test_tokens import new_rfis

ROOT = Path(__file__).resolve().parents[2]


async def mirror_counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.sessions() as session:
        total, distinct = (
            await session.execute(
                text(
                    "SELECT count(*), count(DISTINCT (company_id, resource_name, resource_id))"
                    " FROM resources"
                )
            )
        ).one()
    return int(total), int(distinct)


async def count_status(runtime: Runtime, status: str) -> int:
    return (await statuses(runtime)).get(status, 0)


@pytest.mark.slow
async def test_sustained_load_stays_under_the_rate_limit(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    # Procore's spike window is 25 calls per 10 s; shrunk to 25 per 1 s so 500 events take
    # ~20 s instead of ~200 s. The pacing logic does not depend on the window length.
    limits = {"hourly": 1_000_000, "spike": 25, "spike_window_s": 1.0}
    (await sim.put("/_sim/rate_limit", json=limits)).raise_for_status()
    rids = await new_rfis(sim, 500)
    (await sim.delete("/_sim/calls")).raise_for_status()
    runtime = open_runtime(pipeline_settings(dispatch_per_company=100), name="t")
    try:
        await store_events(runtime, [Spec("RFIs", rid) for rid in rids])
        async with running_worker(runtime.settings):
            await wait_for(lambda: all_final(runtime), timeout=90, interval=0.5)
        assert await statuses(runtime) == {"done": 500}
        calls = await sim_calls(sim, company_id=31)
        refused = calls["by_status"].get("429", 0)
        assert calls["by_status"]["200"] == 500
        assert refused <= 0.02 * calls["total"], calls
        assert (await sim_stats(sim))["rate_limited"] == refused
    finally:
        await runtime.close()


async def test_a_fan_out_storm_costs_one_fetch_per_resource(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    rids = await new_rfis(sim, 10)
    (await sim.delete("/_sim/calls")).raise_for_status()
    runtime = open_runtime(
        pipeline_settings(dispatch_per_company=1000, dispatch_batch_size=1000), name="t"
    )
    try:
        await store_events(runtime, [Spec("RFIs", rids[n % 10]) for n in range(1000)])
        async with running_worker(runtime.settings):
            await wait_for(lambda: all_final(runtime), timeout=60, interval=0.2)
        assert await statuses(runtime) == {"done": 1000}
        fetches = (await sim_calls(sim, company_id=31))["total"]
        assert 10 <= fetches <= 20, fetches
        assert await mirror_counts(runtime) == (10, 10)
    finally:
        await runtime.close()


# A killed worker drops arq's Redis pipeline mid-command; redis-py reports it when collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def hang_fetches(sim: httpx.AsyncClient, runtime: Runtime) -> None:
    """From now on every fetch hangs, and wait until some row is claimed after now: that row
    cannot finish before a kill, however loaded the machine is, so a killed worker leaves a
    claim `processing` for certain (its lease ends after `hung_from`)."""
    lease = timedelta(seconds=runtime.settings.processing_lease_seconds)
    hung_from = datetime.now(UTC) + lease
    (await sim.put("/_sim/faults", json={"latency_ms": 60_000})).raise_for_status()

    async def hanging() -> bool:
        async with runtime.sessions() as session:
            found = await session.execute(
                text(
                    "SELECT count(*) FROM events WHERE status = 'processing'"
                    " AND locked_until > :after"
                ),
                {"after": hung_from},
            )
            return int(found.scalar_one()) > 0

    await wait_for(hanging, timeout=30, interval=0.05)


async def test_a_worker_killed_mid_batch_loses_nothing(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    rids = await new_rfis(sim, 200)
    faults = {"latency_ms": 100}
    (await sim.put("/_sim/faults", json=faults)).raise_for_status()
    runtime = open_runtime(
        pipeline_settings(processing_lease_seconds=2.0, process_concurrency=4), name="t"
    )
    try:
        await store_events(runtime, [Spec("RFIs", rid) for rid in rids])
        doomed = start_worker(runtime.settings)

        async def busy() -> bool:
            return (
                await count_status(runtime, "processing") > 0
                and await count_status(runtime, "done") > 0
            )

        await wait_for(busy, timeout=20, interval=0.05)
        await hang_fetches(sim, runtime)
        await doomed.stop(graceful=False)  # killed: its claims stay `processing`
        assert await count_status(runtime, "processing") > 0
        (await sim.delete("/_sim/faults")).raise_for_status()
        async with running_worker(runtime.settings):
            await wait_for(lambda: all_final(runtime), timeout=60, interval=0.2)
        assert await statuses(runtime) == {"done": 200}
        assert await mirror_counts(runtime) == (200, 200)
    finally:
        await runtime.close()


async def test_a_flushed_redis_loses_nothing(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: ArqRedis
) -> None:
    rids = await new_rfis(sim, 300)
    (await sim.put("/_sim/faults", json={"latency_ms": 50})).raise_for_status()
    runtime = open_runtime(
        pipeline_settings(dispatch_lease_seconds=2.0, process_concurrency=4), name="t"
    )
    try:
        # Half as the receiver hands them over (leased + enqueued), half left to the dispatcher.
        from app.queue import enqueue_events

        handed = await store_events(runtime, [Spec("RFIs", rid) for rid in rids[:150]], leased=True)
        for n in range(0, len(handed), 50):
            await enqueue_events(runtime.queue, handed[n : n + 50])
        await store_events(runtime, [Spec("RFIs", rid) for rid in rids[150:]])
        async with running_worker(runtime.settings):
            await wait_for(lambda: _some_done(runtime), timeout=20, interval=0.05)
            flushed = 0
            async for key in redis.scan_iter(match=f"*{RUN_ID}*"):
                flushed += await redis.delete(key)
            assert flushed > 0
            await wait_for(lambda: all_final(runtime), timeout=60, interval=0.2)
        assert await statuses(runtime) == {"done": 300}
        assert await mirror_counts(runtime) == (300, 300)
    finally:
        await runtime.close()


async def _some_done(runtime: Runtime) -> bool:
    return 0 < await count_status(runtime, "done") < 250


def _worker_env(settings: Settings) -> dict[str, str]:
    """The environment a `procore-hooks worker` process reads its settings from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS"))}
    env.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "QUEUE_NAME": settings.queue_name,
            "ENCRYPTION_KEY": ",".join(k.get_secret_value() for k in settings.encryption_key),
            "PROCORE_API_BASE": settings.procore_api_base,
            "PROCORE_LOGIN_BASE": settings.procore_login_base,
            "PROCORE_CLIENT_ID": settings.procore_client_id,
            "PROCORE_CLIENT_SECRET": settings.procore_client_secret.get_secret_value(),
            "DISPATCH_INTERVAL_SECONDS": "1",
            "DISPATCH_LEASE_SECONDS": "2",
            "PROCESSING_LEASE_SECONDS": "2",
            "PROCESS_CONCURRENCY": "4",
            "WORKER_METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.mark.slow
async def test_a_sigkilled_worker_process_loses_nothing(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    rids = await new_rfis(sim, 200)
    (await sim.put("/_sim/faults", json={"latency_ms": 100})).raise_for_status()
    # The worker process's lease (see _worker_env).
    runtime = open_runtime(pipeline_settings(processing_lease_seconds=2.0), name="t")
    env = _worker_env(runtime.settings)
    command = [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await store_events(runtime, [Spec("RFIs", rid) for rid in rids])
        doomed = subprocess.Popen(command, env=env, cwd=ROOT)
        processes.append(doomed)

        async def busy() -> bool:
            return (
                await count_status(runtime, "processing") > 0
                and await count_status(runtime, "done") > 0
            )

        await wait_for(busy, timeout=30, interval=0.05)
        await hang_fetches(sim, runtime)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        assert await count_status(runtime, "processing") > 0
        (await sim.delete("/_sim/faults")).raise_for_status()
        processes.append(subprocess.Popen(command, env=env, cwd=ROOT))
        await wait_for(lambda: all_final(runtime), timeout=60, interval=0.2)
        assert await statuses(runtime) == {"done": 200}
        assert await mirror_counts(runtime) == (200, 200)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        await runtime.close()
