"""A worker's own liveness and readiness, answered on its metrics port (WORKER_METRICS_PORT):
`GET /health/live` and `GET /health/ready`, for orchestrators' probes.

- live: the worker's event loop still turns (a tick within WORKER_STALE_SECONDS). A loop that
  is stuck is the one thing a restart fixes; Postgres or Redis being down is not.
- ready: live, its last heartbeat reached Postgres within WORKER_STALE_SECONDS, and Redis
  answers. A worker that is not ready is not restarted: a rollout just waits for it.

Written by the worker's event loop, read from the metrics server's threads: plain floats and
a bool, which the threads only read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class WorkerHealth:
    stale_seconds: float
    started: float = field(default_factory=time.monotonic)
    last_tick: float = field(default_factory=time.monotonic)
    last_beat: float | None = None
    redis_up: bool = True

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def live(self, now: float | None = None) -> tuple[bool, str]:
        age = (now if now is not None else time.monotonic()) - self.last_tick
        if age > self.stale_seconds:
            return False, f"event loop stuck for {age:.0f}s"
        return True, "ok"

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        now = now if now is not None else time.monotonic()
        alive, why = self.live(now)
        if not alive:
            return False, why
        if self.last_beat is None or now - self.last_beat > self.stale_seconds:
            return False, "no heartbeat reached Postgres lately"
        if not self.redis_up:
            return False, "Redis does not answer"
        return True, "ok"
