"""The outermost layer for /rest and /oauth calls: count each one, then maybe misbehave.

Every call is counted exactly once, when it ends, under the company it is about (the
`/companies/{id}` in its path, else its `company_id` parameter, else its
`Procore-Company-Id` header), the project its path or `project_id` parameter names, its path
and its status (`"dropped"` when the simulator closed the connection without an answer,
`"lost:<status>"` when it acted on the call and then closed the connection instead of
answering, `"client_closed"` when the client went away before it was answered). The in-flight
count per company is tracked so tests can see how many calls a service let through to one
company at once.

Faults are decided before the call reaches OAuth or REST logic, as a struggling load
balancer or app server would produce them: load shedding (503 + Retry-After), latency,
5xx answers and dropped connections; and answers lost after the call was acted on.

A dropped connection is a true drop: the TCP connection is aborted and the client sees the
peer close without any answer. ASGI has no message for that, so the transport is taken from
uvicorn's request cycle (the object whose bound method is `send`; this layer is the
outermost ASGI callable so `send` is uvicorn's own). Served by anything else, the closest
honest equivalent is used: the answer is started and never finished, which makes the server
close the connection mid-answer.
"""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from typing import Any, AnyStr

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.faults import Action
from simulator.state import Simulator

_PROJECT_IN_PATH = re.compile(r"/projects/(\d+)")
_PROJECT_IN_QUERY = re.compile(rb"(?:^|&)project_id=(\d+)")
_COMPANY_IN_PATH = re.compile(r"/companies/(\d+)")
_COMPANY_IN_QUERY = re.compile(rb"(?:^|&)company_id=(\d+)")
_COMPANY_HEADER = b"procore-company-id"
_JSON = [(b"content-type", b"application/json")]
CLIENT_CLOSED = "client_closed"


class Edge:
    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        rest = path.startswith("/rest/")
        if not rest and not path.startswith("/oauth/"):
            await self.app(scope, receive, send)
            return
        query: bytes = scope["query_string"]
        company_id = _company_of(path, query, scope["headers"])
        project_id = _number(_PROJECT_IN_PATH, path) or _number(_PROJECT_IN_QUERY, query)
        calls = self.sim.calls  # the log this call started in, even if a reset swaps it
        calls.begin(company_id)
        status = "dropped"
        try:
            decision = self.sim.faults.decide(company_id, rest=rest)
            if decision.latency_s:
                await asyncio.sleep(decision.latency_s)
                # A client that gave up during the delay is gone before anything was read:
                # the call is counted, but Procore never acted on it.
                first = await receive()
                if first["type"] == "http.disconnect":
                    status = CLIENT_CLOSED
                    return
                receive = _replay(first, receive)
            if decision.action is Action.DROP:
                await _drop(send)
                return
            if decision.action is Action.LOSE_ANSWER:
                # Acted on, answer never delivered: run the call, keep what it says, cut.
                async def swallowed(message: Message) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = f"lost:{message['status']}"

                try:
                    await self.app(scope, receive, swallowed)
                except ClientDisconnect:
                    status = CLIENT_CLOSED
                    return
                await _drop(send)
                return
            if decision.action is Action.SHED:
                status = "503"
                body = {"errors": ["The service is under heavy load. Please retry later."]}
                retry = [(b"retry-after", str(decision.retry_after_s).encode())]
                await _answer(send, 503, body, retry)
                return
            if decision.action is Action.ERROR:
                status = str(decision.status)
                phrase = HTTPStatus(decision.status).phrase
                await _answer(send, decision.status, {"errors": [phrase]}, [])
                return

            async def observed(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = str(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, observed)
            except ClientDisconnect:
                status = CLIENT_CLOSED
        finally:
            calls.end(company_id, project_id, path, status)


def _company_of(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> int | None:
    named = _number(_COMPANY_IN_PATH, path) or _number(_COMPANY_IN_QUERY, query)
    if named is not None:
        return named
    for name, value in headers:
        if name == _COMPANY_HEADER:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _number(pattern: re.Pattern[AnyStr], text: AnyStr) -> int | None:
    found = pattern.search(text)
    return int(found.group(1)) if found else None


def _replay(first: Message, receive: Receive) -> Receive:
    """A `receive` that yields `first` again before reading on."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _answer(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON + headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def _drop(send: Send) -> None:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()
        # Let the server see the connection is gone before this call returns, so it does not
        # try to answer on its own.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON, (b"content-length", b"64")],
        }
    )
