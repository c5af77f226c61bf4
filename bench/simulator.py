"""Requests per second the Procore simulator serves on its show endpoints, on one core.

    .venv/bin/python bench/simulator.py [--seconds 5] [--connections 32]

The simulator runs in its own process pinned to one core (`taskset -c 0`); the load comes
from another process pinned to another core (`taskset -c 1`): a lean keep-alive HTTP/1.1
client on raw asyncio streams, so the client is not what is measured. Side by side, in the
same run, the same load hits a bare uvicorn app answering a fixed JSON body with the same
server settings: that is the ceiling of the stack on this machine, and the ratio shows what
the simulator's own work costs. Afterwards the simulator's call counters must equal the
number of answers the client got (the counters are exact even under load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
SHOW_PATHS = [
    "/rest/v1.0/projects/900?company_id=31",
    "/rest/v1.0/projects/900/rfis/5150",
    "/rest/v1.0/projects/900/submittals/8812",
    "/rest/v1.0/observations/items/7001?project_id=900",
    "/rest/v1.0/punch_items/6001?project_id=900",
    "/rest/v1.0/companies/31/users/3001",
    "/rest/v1.1/projects/900/vendors/4001",
]
TARGET_RPS = 2000
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


# -- the load (runs in its own pinned process) ---------------------------------------------


async def _connection(
    host: str, port: int, requests: list[bytes], warmup_end: float, end: float, seen: Counter[str]
) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while (now := loop.time()) < end:
            writer.write(requests[n % len(requests)])
            n += 1
            head = await reader.readuntil(b"\r\n\r\n")
            found = _LENGTH.search(head)
            await reader.readexactly(int(found.group(1)) if found else 0)
            seen["answered"] += 1
            seen[head[9:12].decode()] += 1
            if now >= warmup_end:
                seen["measured"] += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(
    url: str, headers: dict[str, str], paths: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths
    ]
    loop = asyncio.get_running_loop()
    warmup_end = loop.time() + 1.0
    end = warmup_end + seconds
    seen: Counter[str] = Counter()
    await asyncio.gather(
        *(_connection(host, port, requests, warmup_end, end, seen) for _ in range(connections))
    )
    return {"rps": seen["measured"] / seconds, **seen}


def _run_load(args: argparse.Namespace) -> None:
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:  # the load still works, only slower
        runner = asyncio.run
    headers = json.loads(args.headers)
    paths = json.loads(args.paths)
    result = runner(_load(args.load, headers, paths, args.seconds, args.connections))
    print(json.dumps(result), flush=True)


# -- the ceiling: a bare uvicorn app ------------------------------------------------------


def _run_bare(port: int) -> None:
    import uvicorn

    body = json.dumps({"id": 5150, "subject": "Slab edge detail", "status": "open"}).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    print(f"bare app on http://127.0.0.1:{port}", flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


# -- orchestration ---------------------------------------------------------------------------


def _pinned(core: int | None, argv: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    url = re.search(r"http://[\d.]+:\d+", line)
    if url is None:
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return process, url.group(0)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _measure(
    core: int | None, url: str, headers: dict[str, str], paths: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    argv = _pinned(
        core,
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load",
            url,
            "--headers",
            json.dumps(headers),
            "--paths",
            json.dumps(paths),
            "--seconds",
            str(args.seconds),
            "--connections",
            str(args.connections),
        ],
    )
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _orchestrate(args: argparse.Namespace) -> int:
    pinned = shutil.which("taskset") is not None
    sim_core, load_core = (args.sim_core, args.load_core) if pinned else (None, None)
    sim, sim_url = _start(_pinned(sim_core, [sys.executable, "-m", "simulator", "--port", "0"]))
    bare_port = _free_port()
    bare, bare_url = _start(
        _pinned(sim_core, [sys.executable, str(Path(__file__).resolve()), "--bare", str(bare_port)])
    )
    try:
        _wait_up(f"{sim_url}/_sim")
        _wait_up(bare_url)
        with httpx.Client(base_url=sim_url) as control:
            control.put(
                "/_sim/rate_limit", json={"hourly": 10**9, "spike": 10**9}
            ).raise_for_status()
            token = control.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "sim-client",
                    "client_secret": "sim-secret",
                },
            ).json()["access_token"]
            control.delete("/_sim/calls").raise_for_status()
            headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": "31"}

            show = _measure(load_core, sim_url, headers, SHOW_PATHS, args)
            counted = control.get("/_sim/calls").json()
            ceiling = _measure(load_core, bare_url, {}, ["/"], args)
    finally:
        for process in (sim, bare):
            process.terminate()
            process.wait(timeout=10)

    where = (
        f"simulator on core {sim_core}, load on core {load_core}"
        if pinned
        else "unpinned (no taskset)"
    )
    print(
        f"Procore simulator, show endpoints ({len(SHOW_PATHS)} kinds), "
        f"{args.connections} keep-alive connections, {args.seconds:.0f} s, {where}"
    )
    print(f"  simulator show endpoints  {show['rps']:>9,.0f} req/s   statuses {_statuses(show)}")
    print(f"  bare uvicorn (ceiling)    {ceiling['rps']:>9,.0f} req/s")
    print(f"  ratio simulator / bare    {show['rps'] / ceiling['rps']:>9.2f}")
    exact = counted["total"] == show["answered"]
    answered = show["answered"]
    print(f"  call counters exact       {exact} ({counted['total']} counted, {answered} answered)")
    ok = show["rps"] >= TARGET_RPS and exact and _statuses(show) == {"200": show["answered"]}
    print(f"  target >= {TARGET_RPS:,} req/s     {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def _statuses(result: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in result.items() if k.isdigit()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sim-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--paths", default="[]", help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        _run_load(args)
    elif args.bare:
        _run_bare(args.bare)
    else:
        sys.exit(_orchestrate(args))


if __name__ == "__main__":
    main()
