"""Many waits of one duration, each given up past its deadline, kept by one periodic check.

The receiver bounds two waits of every webhook: its body's arrival (BODY_READ_TIMEOUT_SECONDS)
and its batch's commit (WEBHOOK_STORE_TIMEOUT_SECONDS). A timer per wait (`asyncio.timeout`)
costs more than the rest of the body read; but all the waits of one kind last the same, so the
oldest is always the first to expire, and one check every tenth of the duration (at most
0.1 s) finds every overdue one at the front of a queue. A wait may so last up to that much
longer than its duration: nothing here needs a finer bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

_CHECK_AT_MOST_EVERY_S = 0.1


@dataclass(slots=True)
class Wait:
    """One wait: `done` once it ended by itself; `expired` once its deadline gave it up.
    `on_expiry` says whether it gave anything up (the wait may have just ended)."""

    deadline: float
    on_expiry: Callable[[], bool]
    done: bool = False
    expired: bool = False


class Deadlines:
    def __init__(self, seconds: float, *, report: Callable[[int], object] | None = None) -> None:
        self.seconds = seconds
        # Told how many waits each check gave up (when any did): one log line, not one each.
        self._report = report
        self._waits: deque[Wait] = deque()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._check(), name="deadlines")

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the waits run on (kept: asking asyncio for it costs a system call per
        request on Python 3.11, which checks the process id each time)."""
        return self._loop or asyncio.get_running_loop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def add(self, on_expiry: Callable[[], bool]) -> Wait:
        """A wait that starts now; `on_expiry` is called if it is not `done` in time."""
        wait = Wait(self.loop.time() + self.seconds, on_expiry)
        self._waits.append(wait)
        return wait

    def expire(self, now: float) -> int:
        """Give up every wait past its deadline; returns how many."""
        waits, expired = self._waits, 0
        while waits:
            first = waits[0]
            if not first.done:
                if first.deadline > now:
                    break
                first.expired = True
                expired += first.on_expiry()
            waits.popleft()
        return expired

    async def _check(self) -> None:
        every = min(_CHECK_AT_MOST_EVERY_S, self.seconds / 10)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            expired = self.expire(loop.time())
            if expired and self._report is not None:
                self._report(expired)
