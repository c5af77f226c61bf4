"""GET /metrics after a receive scenario, the database gauges, protection, the worker's port,
and several processes summed through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.main import create_app
from app.metrics.exposition import start_worker_metrics
from app.models import EventStatus, GateScope
from app.runtime import Runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import CLIENT_ID, WEBHOOK_TOKEN, make_settings
from tests.factories import add_events, add_gate

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def post(client: httpx.AsyncClient, body: Any, token: str = WEBHOOK_TOKEN) -> int:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(
        "/webhooks/procore",
        content=content,
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    return response.status_code


async def test_receive_scenario_counts(client: httpx.AsyncClient, db: Runtime) -> None:
    await add_gate(db, company_id=77)
    before = await scrape(client)
    first = payloads.v2()
    assert await post(client, first) == 202
    assert await post(client, first) == 200  # duplicate
    assert await post(client, first) == 200  # duplicate
    assert await post(client, payloads.v4()) == 202
    assert await post(client, payloads.v3()) == 202
    own = payloads.v2(metadata={"source_application_id": CLIENT_ID})
    assert await post(client, own) == 202  # ignored (loop prevention)
    assert await post(client, payloads.v2(resource_name="Widgets")) == 202  # unsupported
    assert await post(client, payloads.v2(company_id=77)) == 202  # its company gate is parked
    assert await post(client, payloads.v2(), token="wrong") == 401
    assert await post(client, payloads.v2(), token="") == 401
    assert await post(client, b"{not json") == 400
    assert await post(client, [1, 2]) == 422
    assert await post(client, payloads.v2(company_id="acme")) == 422
    assert await post(client, b"{" + b" " * (300 * 1024) + b"}") == 413
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("procore_hooks_events_received_total", payload_version="v2") == 6
    assert delta("procore_hooks_events_received_total", payload_version="v3") == 1
    assert delta("procore_hooks_events_received_total", payload_version="v4") == 1
    assert delta("procore_hooks_events_duplicate_total") == 2
    assert delta("procore_hooks_events_ignored_total") == 1
    assert delta("procore_hooks_events_unsupported_total") == 1
    assert delta("procore_hooks_events_parked_on_receipt_total") == 1
    assert delta("procore_hooks_webhooks_rejected_total", reason="auth") == 2
    assert delta("procore_hooks_webhooks_rejected_total", reason="not_json") == 1
    assert delta("procore_hooks_webhooks_rejected_total", reason="unroutable") == 2
    assert delta("procore_hooks_webhooks_rejected_total", reason="too_large") == 1
    assert delta("procore_hooks_webhooks_rejected_total", reason="storage") == 0


async def test_database_gauges_are_read_at_scrape_time_with_a_short_cache(
    settings: Settings, db: Runtime
) -> None:
    gate = await add_gate(db)
    await add_gate(db, scope=GateScope.PROJECT, project_id=900)
    await add_events(db, 4, status=EventStatus.PARKED, gate_id=gate.id)
    await add_events(db, 3, status=EventStatus.QUEUED)
    app = create_app(make_settings(settings.database_url, metrics_refresh_seconds=60))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            samples = await scrape(client)
            assert value(samples, "procore_hooks_gates", scope="company", state="parked") == 1
            assert value(samples, "procore_hooks_gates", scope="project", state="parked") == 1
            assert value(samples, "procore_hooks_gates", scope="company", state="open") == 0
            assert value(samples, "procore_hooks_parked_events") == 4
            assert 715 < value(samples, "procore_hooks_oldest_parked_gate_seconds") < 800
            assert value(samples, "procore_hooks_queue_depth") == 3
            assert value(samples, "procore_hooks_worker_heartbeat_age_seconds") == float("inf")
            assert value(samples, "procore_hooks_database_state_age_seconds") < 1

            # Within the refresh interval a scrape does not query Postgres again.
            await add_events(db, 2, status=EventStatus.PARKED, gate_id=gate.id)
            cached = await scrape(client)
            assert value(cached, "procore_hooks_parked_events") == 4

    app = create_app(make_settings(settings.database_url, metrics_refresh_seconds=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            fresh = await scrape(client)
    assert value(fresh, "procore_hooks_parked_events") == 6


async def test_metrics_token_protects_the_endpoint(settings: Settings, db: Runtime) -> None:
    app = create_app(make_settings(settings.database_url, metrics_token="scrape-new,scrape-old"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/metrics")).status_code == 401
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"] == "Bearer"
            for token in ("scrape-new", "scrape-old"):
                ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
                assert ok.status_code == 200
                assert "procore_hooks_events_received_total" in ok.text


def test_call_site_functions_feed_the_right_series() -> None:
    def read(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    calls = {
        (200, "fetch"): ("2xx", "fetch"),
        (401, "probe"): ("401", "probe"),
        (403, "diagnose"): ("403", "diagnose"),
        (404, "fetch"): ("404", "fetch"),
        (422, "fetch"): ("4xx", "fetch"),
        (429, "token"): ("429", "token"),
        (503, "hooks"): ("5xx", "hooks"),
        (None, "fetch"): ("error", "fetch"),
        (200, "something-new"): ("2xx", "other"),
    }
    for (status, purpose), (klass, label) in calls.items():
        before = read("procore_hooks_procore_calls_total", status_class=klass, purpose=label)
        metrics.procore_call(status, purpose)
        after = read("procore_hooks_procore_calls_total", status_class=klass, purpose=label)
        assert after - before == 1, (status, purpose)

    lag_count = read("procore_hooks_event_lag_seconds_count")
    slow = read("procore_hooks_event_lag_seconds_bucket", le="60.0")
    metrics.event_finished("done", 0.4)
    metrics.event_finished("dead", 7200.0)
    metrics.job_outcome("parked", 3)
    assert read("procore_hooks_event_lag_seconds_count") - lag_count == 2
    assert read("procore_hooks_event_lag_seconds_bucket", le="60.0") - slow == 1

    before = read("procore_hooks_probes_total", result="opened")
    metrics.probe("opened")
    assert read("procore_hooks_probes_total", result="opened") - before == 1
    before = read("procore_hooks_token_refreshes_total", grant="refresh_token", result="lost")
    metrics.token_refresh("lost")
    after = read("procore_hooks_token_refreshes_total", grant="refresh_token", result="lost")
    assert after - before == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_worker_metrics_port(settings: Settings) -> None:
    assert start_worker_metrics(make_settings(settings.database_url, worker_metrics_port=0)) is None
    worker_settings = make_settings(
        settings.database_url, worker_metrics_port=free_port(), metrics_token="scrape"
    )
    server = start_worker_metrics(worker_settings, host="127.0.0.1")
    assert server is not None
    try:
        metrics.job_outcome("retrying")
        url = f"http://127.0.0.1:{server.port}/metrics"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 401
            response = await client.get(url, headers={"Authorization": "Bearer scrape"})
            assert response.status_code == 200
            samples = parse(response.text)
            assert value(samples, "procore_hooks_jobs_total", outcome="retrying") >= 1
            # A second worker on the same port logs and carries on without metrics.
            assert start_worker_metrics(worker_settings, host="127.0.0.1") is None
    finally:
        server.stop()


_COUNT = textwrap.dedent(
    """
    import sys
    from app import metrics
    for _ in range(int(sys.argv[1])):
        metrics.webhook_rejected("auth")
    metrics.QUEUE_DEPTH.set(int(sys.argv[1]))
    """
)
_RENDER = "from app.metrics.exposition import render; print(render().decode())"


def test_several_processes_are_summed_with_a_multiprocess_dir(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("2", "3"):
        subprocess.run([sys.executable, "-c", _COUNT, count], env=env, check=True, timeout=60)
    shown = subprocess.run(
        [sys.executable, "-c", _RENDER],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    samples = parse(shown.stdout)
    assert value(samples, "procore_hooks_webhooks_rejected_total", reason="auth") == 5
    # Database gauges: the latest value set wins, not a sum over processes.
    assert value(samples, "procore_hooks_queue_depth") == 3


async def test_storage_down_counts_a_storage_rejection(settings: Settings) -> None:
    def rejected() -> float:
        return (
            REGISTRY.get_sample_value(
                "procore_hooks_webhooks_rejected_total", {"reason": "storage"}
            )
            or 0.0
        )

    before = rejected()
    down = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    app = create_app(make_settings(down, webhook_store_timeout_seconds=2.0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert await post(client, payloads.v2()) == 503
    assert rejected() - before == 1


async def test_api_with_several_processes_counts_them_all(
    settings: Settings, db: Runtime, tmp_path: Path
) -> None:
    """`procore-hooks api --workers 2` shares one metrics directory between its processes
    (wiping what an earlier run left there), so any scrape counts every process's requests."""
    from tests.operator.test_logs import wait_until_up  # it imports this module

    stale = tmp_path / "counter_1.db"
    stale.write_bytes(b"left by an earlier run")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "WEBHOOK_AUTH_TOKENS": WEBHOOK_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2"]
    api = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_until_up(base)
        assert not stale.exists(), "an earlier run's samples would be summed with this one's"
        refused = 30
        for _ in range(refused):
            # A new connection each time, so either process may take it.
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert await post(client, payloads.v2(), token="wrong") == 401
        for _ in range(5):
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                samples = await scrape(client)
            total = value(samples, "procore_hooks_webhooks_rejected_total", reason="auth")
            assert total == refused
        assert list(tmp_path.glob("counter_*.db")), "the processes write their samples there"
    finally:
        api.terminate()
        await asyncio.to_thread(api.communicate, timeout=60)
