"""Multi-process: 2 api processes + 4 workers against 1 + 1, same load, side by side.

    python -m bench.multiprocess [--seconds 10] [--json out.json]

Each layout is a whole deployment on this machine (bench.cluster: private Postgres and Redis,
the simulator, `procore-hooks api --workers N`, M `procore-hooks worker` processes). The same
load for both: webhooks over 32 keep-alive connections for `--seconds` (90 % company 31,
installed; 10 % company 33, not installed), then the backlog is processed to the end.

Measured: ingest req/s and p99; pipeline events/s (first received → last finished, every
event of company 31 `done`); and the cross-process invariants:
  - one probe in flight per parked gate: after the gate of company 33 parks, the simulator's
    most-concurrent-calls counter for company 33 (`/_sim/stats` max_in_flight) stays at 1
    while every worker's dispatcher keeps scheduling probes;
  - single-flight tokens: the simulator's token grants (client credentials) while several
    processes hold work, with every token expired once mid-run (`POST /_sim/tokens/expire`):
    one grant at start, one renewal after the expiry, not one per process.

On a 2-core machine more processes cannot add throughput: this measures the contention of 6
processes (plus Postgres, Redis, the simulator and the load) on 2 cores, and it is printed as
such. How it scales across machines is written in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from bench.cluster import Cluster, closed_loop, webhook_request

RESOURCES = 1000


async def run_layout(apis: int, workers: int, seconds: float) -> dict[str, Any]:
    env = {"PROBE_BASE_SECONDS": "0.5", "PROBE_CAP_SECONDS": "1", "PARK_WINDOW_SECONDS": "600"}
    c = Cluster(workers=workers, api_processes=apis, env_overrides=env)
    await asyncio.to_thread(c.__enter__)
    try:
        return await _measure(c, apis, workers, seconds)
    finally:
        await asyncio.to_thread(c.close)


async def _measure(c: Cluster, apis: int, workers: int, seconds: float) -> dict[str, Any]:
    body = {"company_id": 31, "project_id": 900, "resource_name": "RFIs", "event_type": "create"}
    ids = (await c.sim("POST", "/_sim/events", json=body | {"count": RESOURCES}))["resource_ids"]
    rng = random.Random(11)

    def make() -> bytes:
        if rng.random() < 0.1:
            return webhook_request(c.api_port, 33, 920, rng.randint(1, 10**6))
        return webhook_request(c.api_port, 31, 900, rng.choice(ids))

    started = time.monotonic()
    load = await closed_loop(c.api_port, make, connections=32, seconds=seconds, warmup=1.0)
    await c.sim("POST", "/_sim/tokens/expire")
    while True:
        rows = await c.query(
            "SELECT count(*) FILTER (WHERE status NOT IN ('done','skipped','dead','parked')),"
            " count(*) FILTER (WHERE company_id = 31 AND status = 'done'),"
            " count(*) FILTER (WHERE company_id = 31),"
            " extract(epoch FROM max(finished_at) FILTER (WHERE company_id = 31)"
            "   - min(received_at)),"
            " count(*) FILTER (WHERE status = 'parked')"
            " FROM events"
        )
        pending, done31, total31, span, parked = rows[0]
        if pending == 0 or time.monotonic() - started > 600:
            break
        await asyncio.sleep(0.5)
    gate = await c.query("SELECT count(*), max(state::text) FROM gates WHERE company_id = 33")
    await c.sim("DELETE", "/_sim/calls")
    probes_before = await _probes(c)
    await asyncio.sleep(8)
    stats = await c.sim("GET", "/_sim/stats")
    calls33 = await c.sim("GET", "/_sim/calls", params={"company_id": 33})
    probes = await _probes(c) - probes_before
    in_flight_33 = stats["max_in_flight"]["by_company"].get("33", 0)
    result = {
        "layout": f"{apis} api + {workers} workers",
        "ingest_rps": round(load.rps, 1),
        "ingest_p99_ms": round(load.p(0.99), 2),
        "non_2xx": sum(v for k, v in load.statuses.items() if not 200 <= k < 300),
        "pipeline_events_per_s": round(float(total31) / float(span), 1) if span else 0.0,
        "events_done": int(done31),
        "events_company_31": int(total31),
        "parked_company_33": int(parked),
        "gates_company_33": f"{gate[0][0]} ({gate[0][1]})",
        "probe_calls_8s": probes,
        "calls_to_33_8s": calls33["total"],
        "max_in_flight_company_33": in_flight_33,
        "token_grants": stats["token_grants"].get("client_credentials", 0),
        "refreshes": stats["token_grants"].get("refresh_token", 0),
    }
    result["ok_one_probe_in_flight"] = in_flight_33 <= 1
    # One grant at start and one after the forced expiry; a grant per process would be 2 * N.
    result["ok_single_flight_token"] = result["token_grants"] <= 2
    result["ok_all_done"] = done31 == total31
    return result


async def _probes(c: Cluster) -> int:
    rows = await c.query("SELECT count(*) FROM procore_calls WHERE company_id = 33")
    return int(rows[0][0])


async def run(seconds: float) -> dict[str, Any]:
    layouts = [await run_layout(1, 1, seconds), await run_layout(2, 4, seconds)]
    one, many = layouts
    print(
        f"multiprocess: same load, {os.cpu_count()} cores; {seconds:g} s of webhooks over "
        "32 connections, then the backlog processed to the end"
    )
    keys = [
        "ingest_rps",
        "ingest_p99_ms",
        "non_2xx",
        "pipeline_events_per_s",
        "events_done",
        "events_company_31",
        "parked_company_33",
        "gates_company_33",
        "probe_calls_8s",
        "calls_to_33_8s",
        "max_in_flight_company_33",
        "token_grants",
        "refreshes",
    ]
    print(f"  {'':<26}{one['layout']:>20}{many['layout']:>22}")
    for key in keys:
        print(f"  {key:<26}{one[key]!s:>20}{many[key]!s:>22}")
    ingest_ratio = many["ingest_rps"] / one["ingest_rps"] if one["ingest_rps"] else 0
    pipe_ratio = (
        many["pipeline_events_per_s"] / one["pipeline_events_per_s"]
        if one["pipeline_events_per_s"]
        else 0
    )
    print(
        f"  ratio (2+4)/(1+1): ingest {ingest_ratio:.2f}, pipeline {pipe_ratio:.2f} — on "
        f"{os.cpu_count()} cores this is contention, not scaling"
    )
    for layout in layouts:
        print(
            f"  {layout['layout']}: one probe in flight per gate "
            f"{'yes' if layout['ok_one_probe_in_flight'] else 'NO'}; single-flight token "
            f"{'yes' if layout['ok_single_flight_token'] else 'NO'}; all done "
            f"{'yes' if layout['ok_all_done'] else 'NO'}"
        )
    return {
        "layouts": layouts,
        "ingest_ratio": round(ingest_ratio, 2),
        "pipeline_ratio": round(pipe_ratio, 2),
        "ok": all(
            layout["ok_one_probe_in_flight"]
            and layout["ok_single_flight_token"]
            and layout["ok_all_done"]
            for layout in layouts
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of webhook load")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds))
    result["command"] = f"python -m bench.multiprocess --seconds {args.seconds:g}"
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    raise SystemExit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
