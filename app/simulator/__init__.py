"""A fake Procore for tests, demos and benchmarks, served over real HTTP.

OAuth (`/oauth/...`), a REST subset (`/rest/v1.0/...`, `/rest/v1.1/...`), the install and
permission model, rate limits, injected faults and a webhook sender, all matching
`FACTS.md`; controlled and observed through `/_sim/...` (see `app.simulator.control`).

Entry points: `create_app(seed)` (the ASGI app), `serve(host, port, seed)` (blocking, for the
CLI) and `SimulatorServer` (in-process, for tests).
"""

from app.simulator.app import SimulatorApp, create_app
from app.simulator.seed import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SEED,
    Seed,
    load_seed,
)
from app.simulator.server import SimulatorServer, serve

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
