"""What the gates' flows (probes, wakes, the paced release, the operator's actions) use.

The edges hand them the process's Runtime, which has all of it (checked by mypy)."""

from __future__ import annotations

from typing import Protocol

from app.db import SessionFactory
from app.procore.client import ProcoreClient
from app.settings import Settings


class GatesDeps(Protocol):
    sessions: SessionFactory
    settings: Settings
    # Probes ask Procore, with the tokens it holds.
    procore: ProcoreClient
