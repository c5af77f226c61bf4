"""Fault scenarios over a real deployment: private Postgres and Redis, the simulator, the api
under uvicorn and arq worker processes (bench.cluster). Each scenario prints its evidence.

    PROOF=1 .venv/bin/pytest tests/proof/test_faults.py -s [-k kill|redis|postgres|flaky|dup]
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from bench.cluster import DEFAULT_ENV, Cluster

pytestmark = [pytest.mark.proof, pytest.mark.timeout(900)]

COMPANY, PROJECT = 31, 900
MAX_KILLS = 20


def evidence(title: str, **facts: Any) -> None:
    print(f"\n=== {title}")
    for key, value in facts.items():
        print(f"  {key:<28} {value}")


async def create(c: Cluster, count: int, **extra: Any) -> list[int]:
    body = {"company_id": COMPANY, "project_id": PROJECT, "resource_name": "RFIs"}
    answer = await c.sim(
        "POST", "/_sim/events", json={**body, "event_type": "create", "count": count, **extra}
    )
    return list(answer["resource_ids"])


async def update(c: Cluster, ids: list[int], times: int, **extra: Any) -> int:
    """`times` updates of each resource, one webhook per update; returns the events sent."""
    sent = 0
    for rid in ids:
        body = {"company_id": COMPANY, "project_id": PROJECT, "resource_name": "RFIs"}
        body |= {"event_type": "update", "resource_id": rid, "count": times, **extra}
        sent += (await c.sim("POST", "/_sim/events", json=body))["events"]
    return sent


async def delete(c: Cluster, ids: list[int]) -> None:
    for rid in ids:
        body = {"company_id": COMPANY, "project_id": PROJECT, "resource_name": "RFIs"}
        await c.sim(
            "POST", "/_sim/events", json=body | {"event_type": "delete", "resource_id": rid}
        )


async def attempts_summary(c: Cluster) -> dict[str, Any]:
    rows = await c.query(
        "SELECT max(attempts), max(claims), count(*) FILTER (WHERE claims > 1) FROM events"
    )
    calls = await c.query("SELECT count(*) FROM procore_calls")
    return {
        "max_attempts": rows[0][0],
        "max_claims": rows[0][1],
        "events_claimed_twice+": rows[0][2],
        "procore_calls": calls[0][0],
    }


def test_sigkill_workers_repeatedly() -> None:
    """5,000 events while a worker is SIGKILLed every few seconds (20 times) and restarted."""
    with Cluster(workers=2) as c:
        asyncio.run(_sigkill(c))


async def _sigkill(c: Cluster) -> None:
    c.deliver_to_api(concurrency=16)
    started = time.monotonic()
    ids = await create(c, 4000)
    updated = ids[:200]
    sent = len(ids) + await update(c, updated, 5)
    kills = 0
    # Kill while there is work, at most MAX_KILLS times; then let it finish. Every kill
    # orphans the jobs in flight: arq keeps their in-progress keys for the longest job
    # timeout + 10 s, and a worker reads only the first `queue_read_limit` ready jobs, so
    # enough orphans at the head of the queue stall everyone until those keys expire.
    while kills < MAX_KILLS:
        await asyncio.sleep(3)
        victim = kills % 2
        c.kill_worker(victim)
        kills += 1
        await asyncio.sleep(0.5)
        c.start_worker(victim)
        counts = await c.statuses()
        if sum(counts.values()) >= sent and all(s in ("done", "skipped", "dead") for s in counts):
            break
    last_kill = time.monotonic()
    at_last_kill = await c.statuses()
    counts = await c.wait_final(sent, 480)
    after_last_kill = time.monotonic() - last_kill
    mirror = await c.mirror_vs_simulator(COMPANY, {("RFIs", i) for i in ids})
    summary = await attempts_summary(c)
    evidence(
        "SIGKILL a worker every ~3.5 s",
        events_sent=sent,
        events_stored=sum(counts.values()),
        statuses_after=dict(counts),
        worker_sigkills=kills,
        statuses_at_last_kill=at_last_kill,
        final_after_last_kill_s=round(after_last_kill, 1),
        worker_exits_restarted=c.worker_restarts,
        seconds=round(time.monotonic() - started, 1),
        mirror=mirror,
        **summary,
    )
    assert sum(counts.values()) == sent
    assert counts.get("done", 0) == sent, counts
    assert mirror["equal"] == len(ids), mirror
    assert mirror["duplicate_rows"] == 0, mirror


def test_redis_restart_and_flushall() -> None:
    """Redis restarted mid-run (its data gone: no persistence), later FLUSHALL once."""
    with Cluster(workers=2) as c:
        asyncio.run(_redis(c))


async def _redis(c: Cluster) -> None:
    c.deliver_to_api(concurrency=16)
    started = time.monotonic()
    ids = await create(c, 3000)
    sent = len(ids)
    await asyncio.sleep(3)
    before_restart = await c.statuses()
    keys_before = (await c.redis_info("keyspace")).get("db0", {}).get("keys", 0)
    await asyncio.to_thread(c.stop_redis)
    await asyncio.sleep(3)
    await asyncio.to_thread(c.start_redis)
    await asyncio.sleep(6)
    before_flush = await c.statuses()
    keys_flushed = (await c.redis_info("keyspace")).get("db0", {}).get("keys", 0)
    await c.flushall()
    exits_after_restart = c.worker_restarts
    counts = await c.wait_final(sent, 300)
    mirror = await c.mirror_vs_simulator(COMPANY, {("RFIs", i) for i in ids})
    evidence(
        "Redis restart (data lost) + FLUSHALL",
        events_sent=sent,
        statuses_before_restart=before_restart,
        redis_keys_before_restart=keys_before,
        statuses_before_flushall=before_flush,
        redis_keys_flushed=keys_flushed,
        statuses_after=counts,
        worker_exits_restarted=f"{c.worker_restarts} (by the restart policy; "
        f"{exits_after_restart} of them before the FLUSHALL)",
        seconds=round(time.monotonic() - started, 1),
        mirror=mirror,
        **(await attempts_summary(c)),
    )
    assert counts.get("done", 0) == sent, counts
    assert mirror["equal"] == len(ids), mirror
    assert mirror["duplicate_rows"] == 0, mirror


def test_postgres_down_10s_during_ingest() -> None:
    """Postgres stopped for 10 s while the simulator delivers: nothing acknowledged is lost."""
    with Cluster(workers=2) as c:
        asyncio.run(_postgres(c))


async def _postgres(c: Cluster) -> None:
    hook = c.deliver_to_api(concurrency=8, time_scale=0.25)
    started = time.monotonic()
    ids = await create(c, 2000)
    sent = len(ids)
    await asyncio.sleep(0.5)
    before = await c.statuses()
    await asyncio.to_thread(c.stop_postgres)
    down_at = time.monotonic()
    await asyncio.sleep(10)
    await asyncio.to_thread(c.start_postgres)
    down_for = time.monotonic() - down_at
    drained = await c.drain(300)
    counts = await c.wait_final(sent, 300)
    log = await c.sim("GET", f"/_sim/hooks/{hook}/deliveries")
    answers = Counter(str(a["status"] or a["outcome"]) for a in log)
    acknowledged = {a["event_id"].upper() for a in log if a["outcome"] == "delivered"}
    refused = {a["event_id"].upper() for a in log if a["outcome"] != "delivered"}
    stored = {r[0] for r in await c.query("SELECT dedupe_key FROM events")}
    lost = acknowledged - stored
    mirror = await c.mirror_vs_simulator(COMPANY, {("RFIs", i) for i in ids})
    evidence(
        "Postgres stopped for 10 s during ingest",
        worker_exits_restarted=c.worker_restarts,
        events_sent=sent,
        stored_before_stop=sum(before.values()),
        postgres_down_seconds=round(down_for, 1),
        delivery_attempts=len(log),
        answers_by_status=dict(answers),
        events_refused_then_redelivered=len(refused & acknowledged),
        acknowledged_2xx=len(acknowledged),
        stored_rows=len(stored),
        acknowledged_not_stored=len(lost),
        sender_drained=drained,
        statuses_after=counts,
        seconds=round(time.monotonic() - started, 1),
        mirror=mirror,
    )
    assert len(log) < 10_000, "the sender's attempt log is capped at 10,000"
    assert not lost, sorted(lost)[:5]
    assert acknowledged == stored
    assert len(stored) == sent
    assert refused, "no delivery was refused: the outage missed the ingest"
    assert set(answers) <= {"200", "202", "503", "timeout", "connection_error"}, answers
    assert counts.get("done", 0) == sent, counts


def test_flaky_procore_30_percent() -> None:
    """The simulator answers 5xx, drops the connection, or is slower than the client's timeout
    for about 30 % of calls; every event still ends final, attempts within the policy."""
    env = {"PROCORE_TIMEOUT_SECONDS": "1.0"}
    with Cluster(workers=2, env_overrides=env) as c:
        asyncio.run(_flaky(c))


async def _flaky(c: Cluster) -> None:
    max_attempts = int(DEFAULT_ENV["RETRY_MAX_ATTEMPTS"])
    faults = {
        "error_rate": 0.2,
        "error_status": 502,
        "drop_rate": 0.05,
        "latency_jitter_ms": 1100,
        "rng_seed": 7,
    }
    await c.sim("PUT", "/_sim/faults", json=faults)
    c.deliver_to_api(concurrency=16)
    started = time.monotonic()
    ids = await create(c, 1500)
    sent = len(ids)
    counts = await c.wait_final(sent, 400)
    stats = await c.sim("GET", "/_sim/stats")
    calls = await c.sim("GET", "/_sim/calls")
    by_status = dict(calls["by_status"].items())
    failed = sum(v for k, v in by_status.items() if k != "200")
    audited = await c.query(
        "SELECT coalesce(status::text, 'no answer'), count(*) FROM procore_calls GROUP BY 1"
    )
    attempts = await c.query("SELECT attempts, count(*) FROM events GROUP BY 1 ORDER BY 1")
    await c.sim("DELETE", "/_sim/faults")
    mirror = await c.mirror_vs_simulator(COMPANY, {("RFIs", i) for i in ids})
    evidence(
        "Procore flaky: 20 % 502, 5 % dropped, ~7 % over the 1 s timeout",
        events_sent=sent,
        statuses_after=counts,
        simulator_calls=calls["total"],
        simulator_answers=by_status,
        failed_share=f"{failed / max(1, calls['total']):.1%} (+ answers slower than the timeout)",
        faults=stats["faults"],
        client_side_audit={r[0]: r[1] for r in audited},
        attempts_histogram={r[0]: r[1] for r in attempts},
        retry_max_attempts=max_attempts,
        worker_exits_restarted=c.worker_restarts,
        seconds=round(time.monotonic() - started, 1),
        mirror=mirror,
    )
    assert all(s in ("done", "dead") for s in counts), counts
    assert max(r[0] for r in attempts) <= max_attempts
    assert mirror["equal"] + counts.get("dead", 0) >= len(ids), mirror
    assert mirror["duplicate_rows"] == 0


def test_duplicated_and_reordered_deliveries() -> None:
    """30 % of deliveries sent twice, 30 % held back behind later ones (later updates of a
    resource arrive first), 64 POSTs in flight, updates and deletes interleaved: the mirror
    ends equal to the simulator."""
    with Cluster(workers=2) as c:
        asyncio.run(_duplicates(c))


async def _duplicates(c: Cluster) -> None:
    hook = c.deliver_to_api(concurrency=64)
    started = time.monotonic()
    ids = await create(c, 400, duplicate_rate=0.3)
    sent = len(ids)
    for _ in range(2):
        sent += await update(c, ids, 2, duplicate_rate=0.3, reorder_rate=0.3)
    deleted = ids[::10]
    await delete(c, deleted)
    sent += len(deleted)
    await c.drain(300)
    counts = await c.wait_final(sent, 300)
    hooks = await c.sim("GET", "/_sim/hooks")
    outcomes = next(h for h in hooks if h["id"] == hook)["outcomes"]
    log = await c.sim("GET", f"/_sim/hooks/{hook}/deliveries")
    duplicates = sum(1 for a in log if a["duplicate"])
    answers = Counter(str(a["status"]) for a in log)
    inversions = await c.query(
        """
        SELECT count(*) FROM events a JOIN events b
          ON a.resource_id = b.resource_id AND a.id < b.id
         AND (a.occurred_at, a.dedupe_key) > (b.occurred_at, b.dedupe_key)
        """
    )
    mirror = await c.mirror_vs_simulator(COMPANY, {("RFIs", i) for i in ids})
    evidence(
        "Deliveries duplicated 30 % and reordered",
        worker_exits_restarted=c.worker_restarts,
        events_sent=sent,
        duplicate_deliveries=duplicates,
        answers_by_status=dict(answers),
        hook_outcomes=outcomes,
        events_stored=sum(counts.values()),
        out_of_order_pairs_stored=inversions[0][0],
        statuses_after=counts,
        seconds=round(time.monotonic() - started, 1),
        mirror=mirror,
    )
    assert sum(counts.values()) == sent
    assert duplicates > 0
    assert answers.get("200", 0) >= duplicates
    assert inversions[0][0] > 0, "no later update of a resource was stored before an earlier one"
    assert mirror["equal"] == len(ids) - len(deleted), mirror
    assert mirror["deleted_ok"] == len(deleted), mirror
    assert mirror["duplicate_rows"] == 0
