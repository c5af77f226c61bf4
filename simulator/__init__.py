"""A fake Procore for tests, demos and benchmarks, served over real HTTP.

OAuth (`/oauth/...`), a REST subset (`/rest/v1.0/...`, `/rest/v1.1/...`), the install and
permission model, rate limits, injected faults and a webhook sender, all matching
`FACTS.md`; controlled and observed through `/_sim/...` (see `simulator.control`).

Entry points: `create_app(seed)` (the ASGI app), `serve(host, port, seed)` (blocking, for the
CLI) and `SimulatorServer` (in-process, for tests).
"""

from simulator.app import SimulatorApp, create_app
from simulator.seed import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SEED,
    Seed,
    load_seed,
)
from simulator.server import SimulatorServer, serve

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_SEED",
    "Seed",
    "SimulatorApp",
    "SimulatorServer",
    "create_app",
    "load_seed",
    "serve",
]
