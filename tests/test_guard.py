"""The in-process company guard: slow start until proven, hold after repeated refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.gates.guard import CompanyGuard, company_scope, project_scope


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
    guard.succeeded(7)
    await asyncio.gather(*(call() for _ in range(5)))
    assert most == 5


COMPANY = company_scope(7)


def test_threshold_refusals_hold_the_company_until_they_age_out() -> None:
    guard = CompanyGuard(threshold=3, memory_seconds=10)
    for t in (100.0, 101.0):
        guard.refused(7, COMPANY, now=t)
    assert not guard.held(COMPANY, now=102.0)
    guard.refused(7, COMPANY, now=102.0)
    assert guard.held(COMPANY, now=103.0)
    assert not guard.held(company_scope(8), now=103.0)
    assert not guard.held(COMPANY, now=111.5)  # the first refusal is forgotten


def test_project_refusals_hold_only_that_project() -> None:
    guard = CompanyGuard(threshold=2)
    denied, other = project_scope(7, 902), project_scope(7, 900)
    guard.refused(7, denied)
    guard.refused(7, denied)
    assert guard.held(COMPANY, denied)
    assert not guard.held(COMPANY, other)


def test_success_or_a_gate_opening_after_the_refusals_lifts_the_hold() -> None:
    guard = CompanyGuard(threshold=2)
    guard.refused(7, COMPANY)
    guard.refused(7, COMPANY)
    assert guard.held(COMPANY)
    guard.gate_opened(datetime(2000, 1, 1, tzinfo=UTC), COMPANY)  # an old opening: no change
    assert guard.held(COMPANY)
    guard.gate_opened(datetime.now(UTC), COMPANY)
    assert not guard.held(COMPANY)
    guard.refused(7, COMPANY)
    guard.refused(7, COMPANY)
    guard.succeeded(7)
    assert not guard.held(COMPANY)
