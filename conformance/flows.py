"""Flows of one Python SDK against a Procore-compatible server: run each, record it, tally.

A flow is one thing an SDK's user does (list RFIs, show one, survive an expired token). Each
ends as one of:

- PASS: the SDK did it and the answer held what Procore documents.
- FAIL: it did not; the reason is printed. The run fails.
- SKIP: it needs a value an earlier flow failed to provide (so the run has failed already).
- XFAIL: a known defect of the SDK itself, which it would hit against Procore too; the reason
  is printed and the server is not bent to hide it. Flows that need what it would have
  provided are XFAIL as well.
- XPASS: a flow expected to hit a known SDK defect passed: the expectation is stale (or the
  server answers something Procore does not). The run fails, so the list stays true.

The closing line is `<sdk>: N passed, N failed, N skipped, N xfailed[, N xpassed]`; the exit
status is 1 when anything failed or passed unexpectedly, 2 on a configuration error.

Used by `check_pyprocore.py` and `check_propycore.py`, each in its SDK's own virtualenv (so
this module needs nothing but the standard library).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

Flow = Callable[[], str | None]


def env(name: str, default: str | None = None) -> str:
    """A required setting (exit 2 when it is missing or blank)."""
    value = os.environ.get(name, default)
    if value is None or not value.strip():
        print(f"missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return value.strip()


@dataclass(frozen=True, slots=True)
class Server:
    """Where the SDK is pointed, and what it may use there (from the environment)."""

    base_url: str
    login_url: str
    client_id: str
    client_secret: str
    company_id: int
    project_id: int
    # The simulator's control API may be used (to expire tokens); off against Procore.
    sim_control: bool

    @classmethod
    def from_env(cls) -> Server:
        base_url = env("BASE_URL").rstrip("/")
        return cls(
            base_url=base_url,
            login_url=env("LOGIN_URL", base_url).rstrip("/"),
            client_id=env("CLIENT_ID"),
            client_secret=env("CLIENT_SECRET"),
            company_id=int(env("COMPANY_ID")),
            project_id=int(env("PROJECT_ID")),
            sim_control=os.environ.get("SIM_CONTROL") == "1",
        )

    def expire_tokens(self) -> int:
        """`POST /_sim/tokens/expire`: every live access token expires now."""
        url = f"{self.base_url}/_sim/tokens/expire"
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url}")
        request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            expired: int = json.load(answer)["expired"]
        return expired


class FlowTimeout(Exception):
    pass


class Flows:
    def __init__(self, sdk: str) -> None:
        self.sdk = sdk
        self.verbose = os.environ.get("VERBOSE") == "1"
        # Every flow is bounded: an SDK that pages until it gets `[]` would loop forever on a
        # server that ignores `page`, and one that retries 5xx waits seconds each time.
        self.timeout_s = int(os.environ.get("FLOW_TIMEOUT_S", "60"))
        self.found: dict[str, Any] = {}
        self._blocked: set[str] = set()
        self._results: list[tuple[str, str, str]] = []
        signal.signal(signal.SIGALRM, self._on_alarm)

    def flow(
        self,
        name: str,
        needs: tuple[str, ...] = (),
        *,
        sdk_defect: str | None = None,
        provides: tuple[str, ...] = (),
    ) -> Callable[[Flow], None]:
        """Run the decorated function now as the flow `name`. `needs`: keys of `found` it
        uses; `sdk_defect`: the known SDK defect it is expected to hit; `provides`: the keys
        it would have put in `found` (their users are XFAIL when it hits the defect)."""

        def run(fn: Flow) -> None:
            missing = [k for k in needs if self.found.get(k) is None]
            if missing and all(k in self._blocked for k in missing):
                self._record(name, "XFAIL", f"needs {', '.join(missing)}: a known SDK defect")
                return
            if missing:
                self._record(name, "SKIP", f"needs {', '.join(missing)} (an earlier flow failed)")
                return
            signal.alarm(self.timeout_s)
            try:
                note = fn() or ""
            except Exception as exc:  # every failure is reported; none stops the run
                if sdk_defect is not None:
                    self._blocked.update(provides)
                    self._record(name, "XFAIL", f"known SDK defect: {sdk_defect} ({_why(exc)})")
                    return
                self._record(name, "FAIL", _why(exc))
                if self.verbose:
                    traceback.print_exc()
                return
            finally:
                signal.alarm(0)
            if sdk_defect is not None:
                self._record(name, "XPASS", f"expected the SDK defect: {sdk_defect}. {note}")
                return
            self._record(name, "PASS", note)

        return run

    def finish(self) -> NoReturn:
        counts = {s: sum(1 for _, st, _ in self._results if st == s) for s in _STATUSES}
        print(f"\n== {self.sdk} tally ==")
        for name, status, note in self._results:
            print(f"{status:5}  {name}" + (f"  -- {note}" if note and status != "PASS" else ""))
        line = (
            f"{self.sdk}: {counts['PASS']} passed, {counts['FAIL']} failed, "
            f"{counts['SKIP']} skipped, {counts['XFAIL']} xfailed"
        )
        if counts["XPASS"]:
            line += f", {counts['XPASS']} xpassed"
        print(line, flush=True)
        sys.exit(1 if counts["FAIL"] or counts["XPASS"] or counts["SKIP"] else 0)

    def _record(self, name: str, status: str, note: str) -> None:
        self._results.append((name, status, note))
        print(f"{status} {name}{': ' + note if note else ''}", flush=True)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        raise FlowTimeout(f"flow took longer than {self.timeout_s}s (endless paging or retries?)")


_STATUSES = ("PASS", "FAIL", "SKIP", "XFAIL", "XPASS")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _why(exc: BaseException) -> str:
    """The exception with whatever HTTP status and body the SDK attached to it."""
    text = f"{type(exc).__name__}: {exc}"
    status = getattr(exc, "status_code", None)
    if status is not None and str(status) not in text:
        text += f" [status {status}]"
    body = getattr(exc, "response_body", None)
    if body is None:
        body = getattr(exc, "response", None)
    if isinstance(body, str) and body:
        text += f" body={body[:300]}"
    elif isinstance(body, dict | list):
        text += f" body={json.dumps(body)[:300]}"
    return text.replace("\n", " ")[:700]
