"""Soak: half the measured ingest capacity for a long time, workers processing, a company parked.

    python -m bench.soak [--minutes 15] [--window 60] [--json out.json]

A whole deployment on this machine (bench.cluster: private Postgres and Redis, the simulator,
one api process, two arq worker processes). First the ingest capacity is measured (closed loop,
32 keep-alive connections, 10 s, the workers running); then webhooks are sent open-loop at half
that rate for the whole duration: 30 % for company 31 (installed: fetched, mirrored) and 70 % for
company 33 (not installed: its gate parks, and from then on its events are stored parked on
receipt; hundreds of thousands wait in Postgres). Where the workers finish fewer of company
31's events per second than arrive, the backlog waits in Postgres too: the receiver stops
handing rows to the queue while it holds `INGEST_HANDOFF_MAX_JOBS` jobs, and the dispatcher
keeps it under `DISPATCH_MAX_BACKLOG` rows; the soak reports that backlog per window.

Sampled every 5 s: RSS of the api and of each worker, Redis `used_memory`. Counted between the
windows (a count of the whole events table, which grows by the millions: taken every 5 s, during
the load, it would cost the machine more CPU the longer the soak runs, and so load what it
measures): events by status. Per window: answered rate, p50/p99 latency (from the scheduled
send time), events finished, events waiting (queued or retrying) and parked.
Verdicts: RSS after warm-up (the first window) grows by at most 10 %; p99 per window stays
within 3x the median window's; Redis memory flat (within 10 % or 2 MiB of the first
post-warm-up sample) while the parked backlog grows; every answer 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.cluster import Cluster, closed_loop, open_loop, rss_kib, webhook_request

INSTALLED, PARKED = (31, 900), (33, 920)
RESOURCES = 2000
SAMPLE_S = 5.0
# Most of the load is for the uninstalled company: the backlog that must not live in Redis.
PARKED_SHARE = 0.7
FINISHED = ("done", "skipped", "dead", "parked")


async def seed(c: Cluster) -> list[int]:
    """RFIs for the installed company, created silently (no hook yet: no webhooks)."""
    body = {"company_id": 31, "project_id": 900, "resource_name": "RFIs", "event_type": "create"}
    answer = await c.sim("POST", "/_sim/events", json=body | {"count": RESOURCES})
    return list(answer["resource_ids"])


def maker(port: int, ids: list[int]) -> Any:
    rng = random.Random(7)

    def make() -> bytes:
        company, project = PARKED if rng.random() < PARKED_SHARE else INSTALLED
        return webhook_request(port, company, project, rng.choice(ids))

    return make


async def sample(c: Cluster) -> dict[str, Any]:
    api = c.pids("api")
    workers = c.pids("worker")
    memory = await c.redis_info("memory")
    queued = await c.redis_zcard(c.env()["QUEUE_NAME"])
    return {
        "t": time.monotonic(),
        "api_rss_kib": sum(rss_kib(p) for p in api),
        "worker_rss_kib": [rss_kib(p) for p in workers],
        "redis_used_memory": int(memory["used_memory"]),
        "redis_queue_jobs": queued,
    }


async def soak(c: Cluster, minutes: float, window_s: float) -> dict[str, Any]:
    ids = await seed(c)
    make = maker(c.api_port, ids)
    capacity = await closed_loop(c.api_port, make, connections=32, seconds=10)
    rate = capacity.rps / 2
    print(
        f"soak: ingest capacity {capacity.rps:,.0f} req/s (closed loop, 32 connections, "
        f"p99 {capacity.p(0.99):.0f} ms); soaking at {rate:,.0f} req/s for {minutes:g} min "
        "(the first window is the warm-up)"
    )
    samples: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            samples.append(await sample(c))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)

    task = asyncio.create_task(sampler())
    count = max(1, round(minutes * 60 / window_s))
    counts = await c.statuses()
    parked_at_start = counts.get("parked", 0)
    for n in range(count):
        before = counts
        load = await open_loop(c.api_port, make, rate=rate, seconds=window_s)
        counts = await c.statuses()
        processed = sum(counts.get(s, 0) - before.get(s, 0) for s in FINISHED) / window_s
        windows.append(
            {
                "window": n + 1,
                "sent": load.sent,
                "rps": round(load.rps, 1),
                "p50_ms": round(load.p(0.5), 2),
                "p99_ms": round(load.p(0.99), 2),
                "non_2xx": sum(v for k, v in load.statuses.items() if not 200 <= k < 300),
                "done_per_s": round((counts.get("done", 0) - before.get("done", 0)) / window_s, 1),
                "processed_per_s": round(processed, 1),
                "waiting": counts.get("queued", 0) + counts.get("retrying", 0),
                "parked": counts.get("parked", 0),
            }
        )
        w = windows[-1]
        print(
            f"  window {w['window']:>3}: {w['rps']:>7,.0f} req/s  p50 {w['p50_ms']:>6.1f} ms  "
            f"p99 {w['p99_ms']:>7.1f} ms  non-2xx {w['non_2xx']}  "
            f"finished {w['processed_per_s']:>5.0f}/s"
            f"  waiting {w['waiting']:>6}  parked {w['parked']:>7}  "
            f"api RSS {samples[-1]['api_rss_kib'] / 1024:.0f} MiB  "
            f"workers {[round(r / 1024) for r in samples[-1]['worker_rss_kib']]} MiB  "
            f"redis {samples[-1]['redis_used_memory'] / 2**20:.2f} MiB "
            f"({samples[-1]['redis_queue_jobs']} jobs queued)",
            flush=True,
        )
    stop.set()
    await task
    return verdict(capacity.rps, rate, windows, samples, window_s, parked_at_start)


def verdict(
    capacity: float,
    rate: float,
    windows: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    window_s: float,
    parked_at_start: int,
) -> dict[str, Any]:
    t0 = samples[0]["t"]
    warm = [s for s in samples if s["t"] - t0 >= window_s] or samples[-1:]
    first, rest = warm[0], warm[len(warm) // 2 :]

    def growth(key: str, index: int | None = None) -> float:
        def value(s: dict[str, Any]) -> float:
            v = s[key] if index is None else s[key][index]
            return float(v)

        base = value(first)
        return (max(value(s) for s in rest) - base) / base if base else 0.0

    api_growth = growth("api_rss_kib")
    worker_growth = [growth("worker_rss_kib", i) for i in range(len(first["worker_rss_kib"]))]
    redis_first = first["redis_used_memory"]
    redis_max = max(s["redis_used_memory"] for s in rest)
    redis_flat = redis_max - redis_first <= max(0.10 * redis_first, 2 * 2**20)
    jobs = [first["redis_queue_jobs"], max(s["redis_queue_jobs"] for s in rest)]
    p99s = [w["p99_ms"] for w in windows[1:]] or [windows[0]["p99_ms"]]
    p99_median = statistics.median(p99s)
    p99_stable = max(p99s) <= 3 * max(p99_median, 1.0)
    parked = [parked_at_start, windows[-1]["parked"]]
    result = {
        "capacity_rps": round(capacity, 1),
        "soak_rate_rps": round(rate, 1),
        "windows": windows,
        "api_rss_mib": [
            round(first["api_rss_kib"] / 1024, 1),
            round(samples[-1]["api_rss_kib"] / 1024, 1),
        ],
        "api_rss_growth": round(api_growth, 4),
        "worker_rss_growth": [round(g, 4) for g in worker_growth],
        "redis_used_memory_mib": [round(redis_first / 2**20, 2), round(redis_max / 2**20, 2)],
        "parked_events": [parked[0], parked[-1]],
        "waiting_events": [windows[0]["waiting"], windows[-1]["waiting"]],
        "finished_per_s_median": statistics.median(w["processed_per_s"] for w in windows),
        "redis_queue_jobs": jobs,
        "p99_median_ms": p99_median,
        "p99_max_ms": max(p99s),
        "non_2xx": sum(w["non_2xx"] for w in windows),
        "ok_rss": api_growth <= 0.10 and all(g <= 0.10 for g in worker_growth),
        "ok_p99": p99_stable,
        "ok_redis": redis_flat,
    }
    result["ok"] = (
        result["ok_rss"] and result["ok_p99"] and result["ok_redis"] and not result["non_2xx"]
    )
    print(
        f"soak: api RSS {result['api_rss_mib'][0]} → {result['api_rss_mib'][1]} MiB "
        f"(max growth after warm-up {api_growth:+.1%}); workers' growth "
        f"{[f'{g:+.1%}' for g in worker_growth]}; p99 per window median {p99_median:.1f} ms, "
        f"max {max(p99s):.1f} ms; Redis used_memory {result['redis_used_memory_mib'][0]} → "
        f"max {result['redis_used_memory_mib'][1]} MiB while parked events went "
        f"{parked[0]} → {parked[-1]}; jobs waiting in the queue {jobs[0]} → max {jobs[1]}; "
        f"non-2xx {result['non_2xx']}"
    )
    if not redis_flat and jobs[1] > jobs[0]:
        print(
            "soak: Redis grew with the queue of jobs not yet taken (the workers fell behind the "
            "load), not with the parked events, which live in Postgres only"
        )
    print(
        f"soak: RSS within 10 % {'yes' if result['ok_rss'] else 'NO'}; p99 stable "
        f"{'yes' if result['ok_p99'] else 'NO'}; Redis flat {'yes' if result['ok_redis'] else 'NO'}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    window = min(args.window, args.minutes * 60 / 4)
    env = {"PARK_WINDOW_SECONDS": "600", "PROBE_BASE_SECONDS": "30", "PROBE_CAP_SECONDS": "3600"}
    with Cluster(workers=args.workers, env_overrides=env) as c:
        result = asyncio.run(soak(c, args.minutes, window))
    result["command"] = f"python -m bench.soak --minutes {args.minutes:g}"
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
