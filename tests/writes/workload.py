"""The write-back acceptance workload and its evidence, shared by the CI scenario
(tests/scenarios/test_write_scenarios.py, in-process workers) and the proof run
(tests/proof/test_writes.py, worker processes SIGKILLed): the same jobs, the same checks.

The jobs: per company, vendors created through the sync action (keyed by origin_id), some
of them updated again later (through the sync action too: their final name shows the lane's
order), cost codes and work order contracts synced in projects, and RFIs created one call
each (numbered, so a lost answer is looked up). Companies are interleaved in submission
order, as an ERP pushing for several customers would.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PROJECTS = {31: (900, 901), 32: (910, 910), 33: (920, 920)}


def jobs_for(company: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` jobs for one company, in the order that company's connector submits them."""
    first, second = PROJECTS[company]
    jobs: list[dict[str, Any]] = []
    vendors: list[str] = []
    for n in range(count):
        key = f"{company}-{n}"
        draw = rng.random()
        if draw < 0.1 and vendors:
            origin = rng.choice(vendors)
            jobs.append(_job(company, None, "Company Vendors", "update", key, origin,
                             {"name": f"Vendor {origin} (renamed at {n})"}))  # fmt: skip
        elif draw < 0.55:
            origin = f"v-{key}"
            vendors.append(origin)
            jobs.append(_job(company, None, "Company Vendors", "create", key, origin,
                             {"name": f"Vendor {origin}"}))  # fmt: skip
        elif draw < 0.7:
            code = {"name": f"Cost code {key}", "code": f"{n % 100:02d}-{n}"}
            jobs.append(_job(company, first, "Cost Codes", "sync", key, f"cc-{key}", code))
        elif draw < 0.8:
            jobs.append(_job(company, second, "Work Order Contracts", "sync", key, f"wo-{key}",
                             {"title": f"Work order {key}"}))  # fmt: skip
        else:
            jobs.append(_job(company, first, "RFIs", "create", key, None,
                             {"subject": f"RFI {key}", "question": {"body": "Which detail?"},
                              "rfi_manager_id": 77, "number": f"N-{key}"}))  # fmt: skip
    return jobs


def _job(
    company: int,
    project: int | None,
    resource: str,
    operation: str,
    key: str,
    origin: str | None,
    payload: dict[str, Any],
) -> dict[str, Any]:
    return {
        "company_id": company,
        "project_id": project,
        "resource_name": resource,
        "operation": operation,
        "origin_id": origin,
        "resource_id": None,
        "payload": payload,
        "idempotency_key": f"job-{key}",
    }


def interleaved(counts: dict[int, int], seed: int = 19) -> list[dict[str, Any]]:
    """Every company's jobs, merged in a random interleaving that keeps each one's order."""
    rng = random.Random(seed)
    queues = {c: jobs_for(c, n, rng) for c, n in counts.items()}
    merged: list[dict[str, Any]] = []
    while any(queues.values()):
        company = rng.choice([c for c, q in queues.items() if q])
        merged.append(queues[company].pop(0))
    return merged


@dataclass(frozen=True)
class Evidence:
    jobs: int
    statuses: dict[str, int]
    # Resources the simulator holds per origin_id (or RFI number) beyond one: must be 0.
    duplicates: int
    # Keys a job wrote that the simulator does not hold: must be 0.
    missing: int
    # Creates the simulator applied beyond one per key: must be 0.
    extra_creates: int
    # Vendors whose final name is not their last job's (the lane's order broken): must be 0.
    out_of_order: int


def evidence(
    jobs: Sequence[dict[str, Any]],
    rows: Sequence[Any],
    held: Iterable[dict[str, Any]],
    applied: dict[str, dict[str, int]],
) -> Evidence:
    """`jobs` as submitted (in order), their rows, the simulator's resources (`/_sim/resources`
    views) and its applied-writes counters (`/_sim/stats` `writes`)."""
    by_key: dict[tuple[int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for view in held:
        body = view["body"]
        key = body.get("origin_id") or (
            body.get("number") if view["resource_name"] == "RFIs" else None
        )
        if key is not None:
            by_key[(view["company_id"], view["resource_name"], str(key))].append(body)
    wanted: dict[tuple[int, str, str], dict[str, Any]] = {}
    for job in jobs:
        key = job["origin_id"] or job["payload"]["number"]
        wanted[(job["company_id"], job["resource_name"], key)] = job  # the last one wins
    duplicates = sum(len(found) - 1 for found in by_key.values() if len(found) > 1)
    missing = sum(1 for key in wanted if key not in by_key)
    creates: Counter[str] = Counter(name for (_, name, _) in wanted)
    extra = sum(max(0, applied.get(name, {}).get("create", 0) - n) for name, n in creates.items())
    out_of_order = 0
    for key, job in wanted.items():
        vendor = key[1] == "Company Vendors" and key in by_key
        if vendor and by_key[key][0].get("name") != job["payload"]["name"]:
            out_of_order += 1
    return Evidence(
        jobs=len(rows),
        statuses=dict(Counter(str(r.status) for r in rows)),
        duplicates=duplicates,
        missing=missing,
        extra_creates=extra,
        out_of_order=out_of_order,
    )


def in_submission_order(rows: Sequence[Any], company: int) -> bool:
    """Procore allocates ids as it creates: a company's created resources have ids rising
    with its job ids when its jobs ran in submission order."""
    made = [
        r.resource_id
        for r in sorted(rows, key=lambda r: r.id)
        if r.company_id == company and r.operation != "update" and r.resource_id is not None
    ]
    return made == sorted(made)
