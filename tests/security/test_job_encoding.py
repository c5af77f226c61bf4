"""Jobs are data, not code: arq jobs are JSON; a pickle injected into Redis runs nothing; a job
queued as a pickle before the upgrade (plain data) is still processed."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from arq.constants import job_key_prefix

from app.queue import PROCESS_EVENTS, deserialize_job, enqueue_events, serialize_job
from app.runtime import Runtime
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import running_worker, wait_for


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


async def inject(redis: ArqRedis, queue: str, job_id: str, raw: bytes) -> None:
    """Put a job into the queue as arq itself does (a value under arq:job:, a score)."""
    await redis.set(job_key_prefix + job_id, raw, px=60_000)
    await redis.zadd(queue, {job_id: int(time.time() * 1000)})


async def taken(redis: ArqRedis, queue: str, job_id: str) -> bool:
    return await redis.zscore(queue, job_id) is None


async def test_jobs_are_stored_as_json(prt: Runtime, redis: ArqRedis) -> None:
    await enqueue_events(prt.queue, [7, 8])
    [job_id] = await redis.zrange(prt.settings.queue_name, 0, -1)
    raw = await redis.get(job_key_prefix + job_id.decode())
    job = orjson.loads(raw)
    assert job["f"] == PROCESS_EVENTS
    assert job["a"] == [[7, 8]]


async def test_an_injected_pickle_runs_no_code_in_the_worker(
    prt: Runtime, redis: ArqRedis, sim: httpx.AsyncClient, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = {"t": 1, "f": PROCESS_EVENTS, "a": (_RunsCode(marker),), "k": {}, "et": 1}
    queue = prt.settings.queue_name
    await inject(redis, queue, "injected", pickle.dumps(payload))
    async with running_worker(prt.settings) as running:
        await wait_for(lambda: taken(redis, queue, "injected"), timeout=30)
        await wait_for(lambda: asyncio.sleep(0, running.worker.jobs_failed >= 1), timeout=30)
    assert not marker.exists()


async def test_a_job_queued_as_a_pickle_before_the_upgrade_is_processed(
    prt: Runtime, redis: ArqRedis, sim: httpx.AsyncClient
) -> None:
    # Leased as the receiver leaves a row it enqueued itself: the dispatcher keeps off it for
    # 30 s, so only the legacy job can have it processed in time.
    [event_id] = await store_events(prt, [Spec("RFIs", 5150)], leased=True)
    legacy = {"t": 1, "f": PROCESS_EVENTS, "a": ([event_id],), "k": {}, "et": 1}
    await inject(redis, prt.settings.queue_name, "legacy", pickle.dumps(legacy))
    async with running_worker(prt.settings):
        await wait_for(lambda: all_final(prt), timeout=20)
    assert await statuses(prt) == {"done": 1}


def test_the_decoder_reads_plain_pickles_and_refuses_globals(tmp_path: Path) -> None:
    legacy = {"t": 2, "f": PROCESS_EVENTS, "a": ([1, 2],), "k": {}, "et": 5}
    assert deserialize_job(pickle.dumps(legacy)) == legacy
    assert deserialize_job(serialize_job({"r": ValueError("x")})) == {"r": "ValueError: x"}
    for hostile in (_RunsCode(tmp_path / "m"), {"x": ValueError("y")}):
        with pytest.raises(pickle.UnpicklingError, match="refused global"):
            deserialize_job(pickle.dumps({"a": hostile}))
    assert not (tmp_path / "m").exists()
