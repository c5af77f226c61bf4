"""Procore webhook → downstream delivery latency, at a sustained rate.

A whole deployment on this machine (bench/cluster.py: private Postgres and Redis, the
simulator, one api process, one worker process), one destination served by this process that
verifies every delivery with the Standard Webhooks reference library, and an open-loop sender
POSTing Procore v2.0 webhooks to the api at a fixed rate (each for a distinct RFI the simulator
holds, so every one is fetched, mirrored and delivered as a `resource.created`).

Latency is measured from each webhook's scheduled send time (no coordinated omission) to:
  (a) its event finished in Postgres (fetched from Procore and mirrored: `events.finished_at`)
  (b) its resource's delivery arriving at the destination, signature verified
side by side, so (b) - (a) is what delivery adds.

    python -m bench.delivery --rate 100 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import dataclass, field

import httpx
import orjson
from standardwebhooks import Webhook, WebhookVerificationError
from ulid import ULID

from bench.cluster import WEBHOOK_TOKEN, Cluster

ADMIN = {"Authorization": "Bearer proof-admin-token"}


@dataclass
class Receiver:
    secret: str = ""
    arrived: dict[int, float] = field(default_factory=dict)
    verified: int = 0
    unverified: int = 0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = time.time()
                try:
                    payload = Webhook(self.secret).verify(body, headers)
                except WebhookVerificationError:
                    self.unverified += 1
                    status = 401
                else:
                    self.verified += 1
                    self.arrived.setdefault(int(payload["data"]["resource_id"]), now)
                    status = 200
                writer.write(f"HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _webhook(port: int, resource_id: int) -> bytes:
    body = orjson.dumps(
        {
            "id": secrets.randbits(62),
            "ulid": str(ULID()),
            "timestamp": "2026-12-01T08:00:00.000000Z",
            "user_id": 77,
            "company_id": 31,
            "project_id": 900,
            "api_version": "v2.0",
            "event_type": "update",
            "resource_name": "RFIs",
            "resource_id": resource_id,
            "metadata": {"source_application_id": None},
        }
    )
    head = (
        f"POST /webhooks/procore HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {WEBHOOK_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def _send_at_rate(
    port: int, ids: list[int], rate: float, connections: int = 16
) -> dict[int, float]:
    """One webhook per id at `rate` per second; returns each id's scheduled send time."""
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    scheduled: dict[int, float] = {}
    start = time.time() + 0.2
    statuses: dict[int, int] = {}

    async def one(resource_id: int) -> None:
        reader, writer = await idle.get()
        try:
            writer.write(_webhook(port, resource_id))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(x[15:]) for x in head.split(b"\r\n") if x[:15].lower() == b"content-length:"),
                0,
            )
            await reader.readexactly(length)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
        finally:
            idle.put_nowait((reader, writer))

    tasks = []
    for n, resource_id in enumerate(ids):
        at = start + n / rate
        await asyncio.sleep(max(0.0, at - time.time()))
        scheduled[resource_id] = at
        tasks.append(asyncio.create_task(one(resource_id)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    print(f"  webhooks answered {statuses}")
    return scheduled


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(c: Cluster, rate: float, seconds: float, warmup: float, baseline: bool) -> int:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    total = int(rate * (seconds + warmup))
    destination_id = 0
    if baseline:
        print("baseline: no destination (webhook -> mirrored only)")
    else:
        async with httpx.AsyncClient(base_url=c.api_url, headers=ADMIN, timeout=30) as api:
            answer = await api.post(
                "/admin/destinations",
                json={"url": f"http://127.0.0.1:{receiver.port}/in", "event_types": ["resource.*"]},
            )
            answer.raise_for_status()
            receiver.secret = answer.json()["secret"]
            destination_id = answer.json()["id"]
    created = await c.sim(
        "POST",
        "/_sim/events",
        json={
            "company_id": 31,
            "project_id": 900,
            "resource_name": "RFIs",
            "event_type": "create",
            "count": total,
        },
    )
    ids = [int(i) for i in created["resource_ids"]]
    print(
        f"load average {os.getloadavg()[0]:.2f}; {total} webhooks at {rate:g}/s "
        f"({warmup:g} s warm-up + {seconds:g} s measured); 1 api + 1 worker; "
        "the destination verifies with standardwebhooks"
    )
    scheduled = await _send_at_rate(c.api_port, ids, rate)
    deadline = time.time() + 120
    while not baseline and len(receiver.arrived) < total and time.time() < deadline:
        await asyncio.sleep(0.2)
    rows = await c.query(
        "SELECT resource_id, extract(epoch FROM finished_at) FROM events"
        " WHERE finished_at IS NOT NULL"
    )
    mirrored = {int(r[0]): float(r[1]) for r in rows}
    state = await c.query(
        "SELECT state, delivered, dead, failed FROM destinations WHERE id = $1",
        destination_id,
    )
    server.close()
    measured = [i for i in ids if scheduled[i] >= scheduled[ids[0]] + warmup]
    to_mirror = [(mirrored[i] - scheduled[i]) * 1000 for i in measured if i in mirrored]
    to_destination = [
        (receiver.arrived[i] - scheduled[i]) * 1000 for i in measured if i in receiver.arrived
    ]
    lost = 0 if baseline else total - len(receiver.arrived)
    print(f"  destination: verified {receiver.verified}, unverified {receiver.unverified}")
    print(f"  destination row: {dict(state[0]) if state else None}")
    print(f"  measured {len(measured)} webhooks at {rate:g}/s")
    print(
        f"  (a) webhook -> mirrored     p50 {_p(to_mirror, 0.5):7.1f} ms   "
        f"p99 {_p(to_mirror, 0.99):7.1f} ms   max {max(to_mirror, default=0):7.1f} ms"
    )
    print(
        f"  (b) webhook -> destination  p50 {_p(to_destination, 0.5):7.1f} ms   "
        f"p99 {_p(to_destination, 0.99):7.1f} ms   max {max(to_destination, default=0):7.1f} ms"
    )
    p99 = _p(to_destination, 0.99)
    print(
        f"  delivery adds p50 {_p(to_destination, 0.5) - _p(to_mirror, 0.5):.1f} ms; "
        f"p99 {p99:.1f} ms (target < 1000 ms: {'met' if p99 < 1000 else 'NOT met'}); "
        f"not delivered {lost}"
    )
    return 0 if lost == 0 and receiver.unverified == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--baseline", action="store_true", help="no destination: (a) only")
    args = parser.parse_args()
    with Cluster(workers=1, env_overrides={"LOG_LEVEL": "WARNING"}) as c:
        return asyncio.run(run(c, args.rate, args.seconds, args.warmup, args.baseline))


if __name__ == "__main__":
    sys.exit(main())
