"""The in-process company guard: slow start until proven, hold after repeated refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.gates.guard import CompanyGuard
from app.gates.scopes import Work
from app.procore.answers import Outcome, OutcomeKind

NOT_CONNECTED = Outcome(OutcomeKind.NOT_INSTALLED, 403, "App is not connected to this company.")
FORBIDDEN = Outcome(OutcomeKind.FORBIDDEN, 403, "You do not have permission")


async def test_unproven_company_is_called_one_call_at_a_time() -> None:
    guard = CompanyGuard(threshold=3)
    in_flight = most = 0

    async def call() -> None:
        nonlocal in_flight, most
        async with guard.calling(7):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(5)))
    assert most == 1
    guard.succeeded(COMPANY)
    await asyncio.gather(*(call() for _ in range(5)))
    assert most == 5


COMPANY = Work(7)


def test_threshold_refusals_hold_the_company_until_they_age_out() -> None:
    guard = CompanyGuard(threshold=3, memory_seconds=10)
    for t in (100.0, 101.0):
        guard.refused(COMPANY, NOT_CONNECTED, now=t)
    assert not guard.held(COMPANY, now=102.0)
    guard.refused(COMPANY, NOT_CONNECTED, now=102.0)
    assert guard.held(COMPANY, now=103.0)
    assert not guard.held(Work(8), now=103.0)
    assert not guard.held(COMPANY, now=111.5)  # the first refusal is forgotten


def test_project_refusals_hold_only_that_project() -> None:
    guard = CompanyGuard(threshold=2)
    denied, other = Work(7, 902, "RFIs"), Work(7, 900, "RFIs")
    guard.refused(denied, FORBIDDEN)
    guard.refused(denied, FORBIDDEN)
    assert guard.held(denied)
    assert not guard.held(other)
    assert not guard.held(COMPANY)


def test_success_or_a_gate_opening_after_the_refusals_lifts_the_hold() -> None:
    guard = CompanyGuard(threshold=2)
    guard.refused(COMPANY, NOT_CONNECTED)
    guard.refused(COMPANY, NOT_CONNECTED)
    assert guard.held(COMPANY)
    guard.gate_opened(datetime(2000, 1, 1, tzinfo=UTC), COMPANY)  # an old opening: no change
    assert guard.held(COMPANY)
    guard.gate_opened(datetime.now(UTC), COMPANY)
    assert not guard.held(COMPANY)
    guard.refused(COMPANY, NOT_CONNECTED)
    guard.refused(COMPANY, NOT_CONNECTED)
    guard.succeeded(COMPANY)
    assert not guard.held(COMPANY)
