"""Acceptance, end to end: the Procore simulator's webhooks → the api → worker processes
(Procore fetches, the mirror) → a destination that verifies every delivery with the Standard
Webhooks reference library. Meanwhile a worker is SIGKILLed, Redis is flushed (a private
redis-server of this test's own) and the destination goes down long enough to be parked; when
it returns it receives everything, and what it received equals the change feed: one resource's
changes in feed order, each resource's last delivery its newest change_seq.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from app.delivery import service
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import WEBHOOK_TOKEN
from tests.delivery.receiver import Destination
from tests.factories import add_destination, all_final
from tests.harness import wait_for
from tests.pipeline.test_redis_outage import PrivateRedis, private_redis
from tests.pipeline.test_resilience import ROOT, _worker_env
from tests.pipeline.test_tokens import new_rfis
from tests.subscriptions.conftest import free_port, serving_api

__all__ = ["private_redis"]

DELIVERY_ENV = {
    "DELIVERY_PARK_THRESHOLD": "3",
    "DELIVERY_RETRY_BASE_SECONDS": "0.05",
    "DELIVERY_RETRY_CAP_SECONDS": "0.2",
    "DELIVERY_PROBE_BASE_SECONDS": "0.5",
    "DELIVERY_PROBE_CAP_SECONDS": "1.0",
    "DELIVERY_LEASE_SECONDS": "5",
    "WORKER_POLL_SECONDS": "0.05",
}


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _update(sim: httpx.AsyncClient, resource_ids: list[int]) -> None:
    for resource_id in resource_ids:
        answer = await sim.post(
            "/_sim/events",
            json={
                "company_id": 31,
                "project_id": 900,
                "resource_name": "RFIs",
                "resource_id": resource_id,
                "event_type": "update",
            },
        )
        answer.raise_for_status()


async def _destination(runtime: Runtime, destination_id: int) -> dict[str, object]:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                text("SELECT state, next_attempt_at FROM destinations WHERE id = :id"),
                {"id": destination_id},
            )
        ).one()
    return dict(row._mapping)


async def _probes(runtime: Runtime, destination_id: int, since: datetime) -> list[datetime]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT at FROM delivery_attempts WHERE destination_id = :id AND at >= :since"
                " ORDER BY id"
            ),
            {"id": destination_id, "since": since},
        )
        return list(rows.scalars())


@pytest.mark.slow
async def test_every_delivery_is_verified_and_equals_the_change_feed_through_faults(
    db: Runtime,
    sim: httpx.AsyncClient,
    pipeline_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    settings = pipeline_settings(redis_url=private_redis.url)
    runtime = open_runtime(settings, name="delivery-e2e")
    env = {**_worker_env(settings), **DELIVERY_ENV}
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with Destination() as receiver, serving_api(settings, free_port()) as api:
            created = await add_destination(runtime, receiver)
            hook = await sim.post(
                "/_sim/hooks",
                json={
                    "destination_url": f"{api}/webhooks/procore",
                    "authorization": WEBHOOK_TOKEN,
                    "payload_version": "v2.0",
                    "concurrency": 8,
                },
            )
            hook.raise_for_status()
            workers = [_spawn(env, log), _spawn(env, log)]

            # Phase 1: 30 new RFIs flow through.
            created_ids = await new_rfis(sim, 30)
            await receiver.wait_for(30, timeout_s=120)

            # Phase 2: a worker is SIGKILLed mid-flow and Redis loses everything it held.
            await _update(sim, created_ids[:10])
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            flush = aioredis.Redis.from_url(private_redis.url)
            await flush.flushall()
            await flush.aclose()
            workers[0] = _spawn(env, log)

            # Phase 3: the destination goes down while changes keep coming: it is parked.
            await receiver.down()
            await _update(sim, created_ids[10:20])

            async def parked() -> bool:
                return (await _destination(runtime, created.id))["state"] == "parked"

            await wait_for(parked, timeout=120, interval=0.1)
            parked_at = datetime.now(UTC)

            async def probed_thrice() -> bool:
                return len(await _probes(runtime, created.id, parked_at)) >= 3

            await wait_for(probed_thrice, timeout=120, interval=0.1)
            probes = await _probes(runtime, created.id, parked_at)
            # PROBE_BASE 0.5 s, cap 1 s, equal jitter: one probe at a time, at least 0.5 s
            # (the floor) apart; never the flood of a retry loop.
            for a, b in itertools.pairwise(probes):
                assert (b - a).total_seconds() >= 0.5 - 0.05, probes

            # Phase 4: it comes back and receives everything held, in order.
            await receiver.up()
            await _update(sim, created_ids[20:25])
            await wait_for(lambda: all_final(runtime), timeout=120, interval=0.2)

            async def caught_up() -> bool:
                return (await _destination(runtime, created.id))["state"] == "open" and not (
                    await service.pending(runtime, created.id)
                )

            await wait_for(caught_up, timeout=120, interval=0.2)
            await asyncio.sleep(0.5)  # the last answers are recorded after they are sent

        assert receiver.unverified == [], "every delivery verifies with standardwebhooks"
        async with runtime.sessions() as session:
            feed = {
                (r.resource_name, r.resource_id): r.change_seq
                for r in await session.execute(
                    text("SELECT resource_name, resource_id, change_seq FROM resources")
                )
            }
        delivered: dict[tuple[str, int], list[int]] = {}
        for d in receiver.delivered():
            assert d.id == f"msg_r{d.data['change_seq']}"
            key = (d.data["resource_name"], d.data["resource_id"])
            delivered.setdefault(key, []).append(d.data["change_seq"])
        assert set(delivered) == set(feed), "every resource of the feed, nothing else"
        for key, seqs in delivered.items():
            assert seqs == sorted(seqs), f"{key} out of feed order: {seqs}"
            assert seqs[-1] == feed[key], f"{key}: last delivered {seqs[-1]}, feed {feed[key]}"
        distinct = {d.id for d in receiver.delivered()}
        # At least once: a message sent again after the kill carries its same id.
        assert len(receiver.delivered()) >= len(distinct) >= len(feed)
        types = {d.type for d in receiver.delivered()}
        assert types <= {"resource.created", "resource.updated"}
        assert "resource.created" in types
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        await runtime.close()
