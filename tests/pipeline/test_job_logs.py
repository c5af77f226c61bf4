"""A real worker process's log lines name the job (`job_id`, `job_try`) and what they are
about (`event_id`, `company_id`), through structlog's context, and each processed event gets
a line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx

from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.factories import Spec, all_final, store_events
from tests.harness import wait_for
from tests.pipeline.test_resilience import ROOT, _worker_env


async def test_a_workers_lines_carry_the_job_and_the_event(
    db: Runtime, sim: httpx.AsyncClient, pipeline_settings: Callable[..., Settings], redis: Any
) -> None:
    runtime = open_runtime(pipeline_settings(), name="t")
    env = {**_worker_env(runtime.settings), "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        [missing] = await store_events(runtime, [Spec("RFIs", 999_999)])  # Procore: 404
        await wait_for(lambda: all_final(runtime), timeout=60)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        await runtime.close()
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    [processed] = [line for line in lines if line.get("event") == "event.processed"]
    assert processed["event_id"] == missing
    assert processed["company_id"] == 31
    assert processed["status"] == "skipped"
    assert processed["job_try"] == 1
    assert str(processed["job_id"]).startswith(runtime.settings.queue_name)
