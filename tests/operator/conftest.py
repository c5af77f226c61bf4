"""Operator surface fixtures: admin headers, and rows written straight into the tables (a
parked gate, events in any status, mirror rows) so each test sets up exactly the state it
reads."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN

# The Procore simulator on a real port, for the paths that probe Procore (confirm-install).


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return dict(ADMIN)
