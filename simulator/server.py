"""Run the simulator: `serve()` for the CLI (`procore-hooks simulate`), `SimulatorServer`
for tests, which runs it on a free loopback port in a thread with its own event loop, so
the code under test can never starve it.

Seed files use the JSON format documented in `simulator.seed` (clients, users,
companies with projects, resources, rate limits, token lifetime, RNG seed); without one the
built-in default seed is used (client `sim-client`, companies 31, 32 and 33).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from types import TracebackType

import uvicorn

from simulator.app import SimulatorApp, create_app
from simulator.seed import Seed, load_seed

_STOP_TIMEOUT_S = 10.0
_BACKLOG = 2048


def serve(host: str, port: int, seed: Path | None) -> None:
    """Serve until interrupted; `port` 0 picks a free port. Prints where everything is."""
    app = create_app(load_seed(seed) if seed is not None else None)
    sock = _bind(host, port)
    base_url = _base_url(host, sock.getsockname()[1])
    clients = ", ".join(sorted(app.sim.tokens.clients)) or "(none)"
    print(
        f"Procore simulator on {base_url}\n"
        f"  OAuth:    {base_url}/oauth/token   {base_url}/oauth/authorize\n"
        f"  REST:     {base_url}/rest/v1.0/me   (Procore-Company-Id on all but /me, /companies)\n"
        f"  Control:  {base_url}/_sim   (lists every control endpoint)\n"
        f"            {base_url}/_sim/calls   {base_url}/_sim/stats   {base_url}/_sim/reset\n"
        f"  Clients:  {clients}   (secrets are in the seed, never printed)",
        flush=True,
    )
    uvicorn.Server(_config(app)).run(sockets=[sock])


class SimulatorServer:
    """The simulator on `127.0.0.1:<free port>` in a background thread.

    ```python
    async with SimulatorServer() as sim:
        httpx.get(f"{sim.base_url}/_sim/stats")
    ```
    """

    def __init__(
        self, seed: Seed | Path | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if isinstance(seed, Path):
            seed = load_seed(seed)
        self.app: SimulatorApp = create_app(seed)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SimulatorServer is not started")
        return self._base_url

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SimulatorServer already started")
        sock = _bind(self._host, self._port)
        server = uvicorn.Server(_config(self.app))
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name="procore-simulator", daemon=True
        )
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError("the simulator failed to start") from self._error
            await asyncio.sleep(0.005)
        self._base_url = _base_url(self._host, sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, _STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError("the simulator did not stop in time")
        self._server = None
        self._thread = None
        self._base_url = None
        if self._error is not None:
            raise RuntimeError("the simulator stopped with an error") from self._error

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller of start()/stop()
            self._error = exc
        finally:
            sock.close()


def _config(app: SimulatorApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=2,
        backlog=_BACKLOG,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before uvicorn starts means a client that read the banner can connect.
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
