"""Assemble the simulator: one ASGI application serving OAuth, REST and the control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from simulator.answers import json_answer
from simulator.control import ControlApi
from simulator.edge import Edge
from simulator.oauth import OAuthApi
from simulator.rest import RestApi
from simulator.seed import DEFAULT_SEED, Seed
from simulator.sender import Sender
from simulator.state import Simulator
from simulator.webhooks import WebhooksApi
from simulator.writes import WritesApi


class SimulatorApp:
    """The ASGI callable; `sim` and `sender` are exposed for the server and for tests that
    run in the simulator's own event loop (anything else should use the control API)."""

    def __init__(self, sim: Simulator, sender: Sender) -> None:
        self.sim = sim
        self.sender = sender

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await sender.open()
            try:
                yield
            finally:
                await sender.close()

        rest = RestApi(sim)
        routes = [
            *OAuthApi(sim).routes(),
            *rest.routes(),
            *WritesApi(sim, sender, rest).routes(),
            *WebhooksApi(sim, sender, rest).routes(),
            *ControlApi(sim, sender).routes(),
        ]
        starlette = Starlette(
            routes=routes,
            lifespan=lifespan,
            exception_handlers={HTTPException: _json_http_error},
        )
        # The edge wraps Starlette from the outside so that it sees the server's own `send`
        # (needed for true connection drops) and counts calls Starlette would 404.
        self._asgi = Edge(starlette, sim)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


async def _json_http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer JSON like every Procore error
    (`api_essentials/error_reference.md`), never Starlette's text/plain: clients such as the
    JS SDK parse every error body as JSON."""
    assert isinstance(exc, HTTPException)
    return json_answer({"errors": exc.detail}, exc.status_code, exc.headers)


def create_app(seed: Seed | None = None) -> SimulatorApp:
    """A fresh simulator over `seed` (the built-in `DEFAULT_SEED` when None)."""
    return SimulatorApp(Simulator(seed or DEFAULT_SEED), Sender())
