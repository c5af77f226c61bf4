"""The boundary under hostile clients, on a whole deployment (bench.cluster), side by side:

1. Slow clients: webhook latency (p50/p99) with no load, then with N slow connections held
   open (half-sent headers, a byte every few seconds; any the server closes is opened again,
   so N stay held), straight to `procore-hooks api`, and through the nginx front
   (deploy/nginx, Debian's nginx) when it is installed.
2. Big unauthenticated bodies: a 20 MiB body to every route (declared, and chunked without a
   length), and 21 MiB of `[{},{},...]` to the admin API: the answers, and the api's RSS
   growth.

    python -m bench.boundary                    # 2,000 slow connections, 20 s hold
    python -m bench.boundary --slow 500 --hold 10

Not a timed test: it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from ulid import ULID

from bench.cluster import ROOT, WEBHOOK_TOKEN, Cluster, free_port, rss_kib

MIB = 1024 * 1024
TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"


def webhook_body() -> bytes:
    return json.dumps(
        {
            "id": 4410002,
            "ulid": str(ULID()),
            "timestamp": "2026-03-02T10:15:30.123456Z",
            "company_id": 31,
            "project_id": 900,
            "api_version": "v2.0",
            "event_type": "update",
            "resource_name": "RFIs",
            "resource_id": 5150,
        }
    ).encode()


# -- slow clients ------------------------------------------------------------------------


class SlowClients:
    """N connections that never finish their request headers; re-opened when closed."""

    def __init__(self, host: str, port: int, count: int, drip_s: float = 3.0) -> None:
        self.host, self.port, self.count, self.drip_s = host, port, count, drip_s
        self.closed_by_server = 0
        self.open_now = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    async def start(self) -> None:
        for n in range(self.count):
            self._tasks.append(asyncio.create_task(self._hold(n)))
            if n % 200 == 199:
                await asyncio.sleep(0.05)  # do not trip the listen backlog
        deadline = time.monotonic() + 30
        while self.open_now < self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _hold(self, n: int) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.open_now += 1
            try:
                writer.write(b"POST /webhooks/procore HTTP/1.1\r\nHost: slow\r\n")
                await writer.drain()
                while not self._stop.is_set():
                    # One more header byte now and then: never a whole request.
                    read = asyncio.create_task(reader.read(1024))
                    done, _ = await asyncio.wait({read}, timeout=self.drip_s)
                    if read in done:
                        read.exception()  # retrieved: a reset is a close too
                        self.closed_by_server += 1
                        break
                    read.cancel()
                    writer.write(b"X")
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                self.closed_by_server += 1
            finally:
                self.open_now -= 1
                writer.close()


async def webhook_latencies(base: str, seconds: float, concurrency: int = 4) -> list[float]:
    """Send webhooks for `seconds`; each request's latency in seconds (errors: +inf)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:

        async def sender() -> None:
            while time.monotonic() < deadline:
                body = webhook_body()
                started = time.perf_counter()
                try:
                    answer = await client.post(
                        "/webhooks/procore",
                        content=body,
                        headers={
                            "Authorization": WEBHOOK_TOKEN,
                            "Content-Type": "application/json",
                        },
                    )
                    ok = answer.status_code == 202
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started if ok else float("inf"))
                await asyncio.sleep(0.02)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, latencies: list[float], slow: SlowClients | None) -> str:
    failed = sum(1 for v in latencies if v == float("inf"))
    ok = [v for v in latencies if v != float("inf")] or [float("nan")]
    held = (
        ""
        if slow is None
        else f"  held {slow.open_now}/{slow.count}, closed by server {slow.closed_by_server}"
    )
    return (
        f"  {label:<34} {len(latencies):>5} webhooks  p50 {statistics.median(ok) * 1000:7.1f} ms"
        f"  p99 {quantile(ok, 0.99) * 1000:7.1f} ms  failed {failed}{held}"
    )


@contextlib.asynccontextmanager
async def nginx_front(api_port: int, root: Path) -> AsyncIterator[int | None]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        yield None
        return
    port = free_port()
    runtime = root / "nginx"
    runtime.mkdir(exist_ok=True)
    values = {
        "PROCORE_HOOKS_LISTEN": f"127.0.0.1:{port}",
        "PROCORE_HOOKS_UPSTREAM": f"127.0.0.1:{api_port}",
        "PROCORE_HOOKS_RUNTIME": str(runtime),
        "PROCORE_HOOKS_ACCESS_LOG": "off",
    }
    text = re.sub(
        r"\$\{(PROCORE_HOOKS_[A-Z_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text()
    )
    text = text.replace("access_log off no_query;", "access_log off;")
    config = root / "nginx.conf"
    config.write_text(text)
    process = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(runtime), "-e", "stderr", "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    await client.get(f"http://127.0.0.1:{port}/health/live")
                    break
                await asyncio.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def slow_clients(cluster: Cluster, count: int, hold: float) -> list[str]:
    lines = [f"Slow clients: {count} connections held (half-sent headers), webhooks meanwhile"]
    base = cluster.api_url
    lines.append(line("no slow clients, direct", await webhook_latencies(base, hold), None))
    slow = SlowClients("127.0.0.1", cluster.api_port, count)
    await slow.start()
    try:
        lines.append(
            line("slow clients, direct to the api", await webhook_latencies(base, hold), slow)
        )
    finally:
        await slow.stop()
    async with nginx_front(cluster.api_port, cluster.root) as port:
        if port is None:
            lines.append("  (nginx not installed: the front was not measured)")
            return lines
        front = f"http://127.0.0.1:{port}"
        lines.append(
            line("no slow clients, through nginx", await webhook_latencies(front, hold), None)
        )
        slow = SlowClients("127.0.0.1", port, count)
        await slow.start()
        try:
            lines.append(
                line("slow clients, through nginx", await webhook_latencies(front, hold), slow)
            )
        finally:
            await slow.stop()
    return lines


# -- big bodies ----------------------------------------------------------------------------


async def routes(base: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=base) as client:
        schema = (await client.get("/openapi.json")).json()
    found = []
    for path, operations in schema["paths"].items():
        for method in operations:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return [*found, ("POST", "/setup/connect"), ("GET", "/connect/procore")]


async def raw_request(
    port: int, method: str, path: str, total: int, *, chunked: bool, headers: str = ""
) -> tuple[int, int]:
    """Send `total` bytes of `[{},{},...]` as a request body (declared or chunked) while
    reading: (the answer's status or 0 if none, bytes of body sent before it came)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"{headers}{framing}\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = asyncio.create_task(reader.readline())
    # A server that refuses on the declared length answers before any body byte (and then
    # closes: bytes still in flight would reset the connection and lose its answer).
    await asyncio.wait({status_line}, timeout=0.5)
    piece = b"[" + b"{}," * (64 * 1024 // 3)
    sent = 0
    try:
        while sent < total and not status_line.done():
            await asyncio.sleep(0.001)
            data = piece if not chunked else f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            writer.write(data)
            await writer.drain()
            sent += len(piece)
        if chunked and not status_line.done():
            writer.write(b"0\r\n\r\n")
        line = await asyncio.wait_for(status_line, 30)
    except (OSError, TimeoutError):
        line = status_line.result() if status_line.done() and not status_line.exception() else b""
    finally:
        writer.close()
    parts = line.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), sent


async def big_bodies(cluster: Cluster) -> list[str]:
    pid = cluster.procs["api"].pid
    before = rss_kib(pid)
    peak = before
    statuses: Counter[tuple[str, int]] = Counter()
    most_sent = 0
    targets = await routes(cluster.api_url)
    cases = [(m, p, "declared", False, "") for m, p in targets]
    cases += [(m, p, "chunked", True, "") for m, p in targets]
    admin = "Authorization: Bearer proof-admin-token\r\n"
    cases += [("POST", "/admin/events/replay", "amplified", flag, "") for flag in (False, True)] * 3
    cases += [("POST", "/admin/events/replay", "amplified+admin", False, admin)]
    for method, path, label, chunked, extra in cases:
        size = 21 * MIB if label.startswith("amplified") else 20 * MIB
        status, sent = await raw_request(
            cluster.api_port, method, path, size, chunked=chunked, headers=extra
        )
        statuses[(label, status)] += 1
        most_sent = max(most_sent, sent)
        peak = max(peak, rss_kib(pid))
    async with httpx.AsyncClient(base_url=cluster.api_url, timeout=30) as client:
        started = time.perf_counter()
        delivered = await client.post(
            "/webhooks/procore",
            content=webhook_body(),
            headers={"Authorization": WEBHOOK_TOKEN, "Content-Type": "application/json"},
        )
        webhook_ms = (time.perf_counter() - started) * 1000
    after = rss_kib(pid)
    answers = ", ".join(f"{label} {status}: {n}" for (label, status), n in sorted(statuses.items()))
    return [
        f"Big bodies: 20 MiB to each of {len(targets)} routes (declared and chunked), 21 MiB of"
        " [{},{},...] to /admin/events/replay x7, no credentials (and once with)",
        f"  answers: {answers}",
        f"  most body sent before the answer: {most_sent / 1024:.0f} KiB",
        f"  api RSS: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, after"
        f" {after / 1024:.1f} MiB: growth {(peak - before) / 1024:.1f} MiB",
        f"  a webhook right after: {delivered.status_code} in {webhook_ms:.1f} ms",
    ]


async def run(cluster: Cluster, args: argparse.Namespace) -> list[str]:
    report = await big_bodies(cluster)
    return report + await slow_clients(cluster, args.slow, args.hold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=2000, help="slow connections held")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds of webhooks per case")
    args = parser.parse_args()
    with Cluster(workers=1) as cluster:
        report = asyncio.run(run(cluster, args))
    print("\n".join(report))


if __name__ == "__main__":
    main()
