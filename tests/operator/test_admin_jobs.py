"""The write jobs' admin API: submit (one or a bounded bulk), refuse what cannot be sent with a
422 naming the field and nothing queued, list by status and company with cursors, show,
cancel, replay, resolve, and the outcome feed. Every change is audited."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text, update

from app.main import create_app
from app.models import AdminAction, JobStatus, OutboxEntry, WriteJob
from app.registry import resources
from app.runtime import Runtime
from app.settings import Settings
from app.writes import policy
from tests.factories import audit_rows


def vendor(key: str, **overrides: Any) -> dict[str, Any]:
    return {
        "company_id": 31,
        "resource_name": "Company Vendors",
        "operation": "create",
        "origin_id": f"erp-{key}",
        "payload": {"name": f"Vendor {key}"},
        "idempotency_key": key,
        **overrides,
    }


def rfi(key: str, **payload: Any) -> dict[str, Any]:
    fields = {"subject": "Slab edge", "question": {"body": "Which?"}, "rfi_manager_id": 77}
    return {
        "company_id": 31,
        "project_id": 900,
        "resource_name": "RFIs",
        "operation": "create",
        "payload": {**fields, **payload},
        "idempotency_key": key,
    }


async def stored(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(WriteJob))).scalar_one()


async def set_status(runtime: Runtime, job_id: int, status: JobStatus, **values: Any) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(WriteJob).where(WriteJob.id == job_id).values(status=status, **values)
        )


async def test_a_job_is_queued_and_audited(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    answer = await client.post("/admin/jobs", json=vendor("k-1"), headers=admin)

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body == {"id": body["id"], "status": "queued", "duplicate": False}
    shown = (await client.get(f"/admin/jobs/{body['id']}", headers=admin)).json()
    assert shown["payload"] == {"name": "Vendor k-1"}
    assert shown["origin_id"] == "erp-k-1"
    assert shown["status"] == "queued"
    assert shown["attempts"] == 0
    assert shown["answer"] is None
    assert shown["submitted_by"].startswith("admin:")
    [action] = await audit_rows(db)
    assert action.action == "jobs_submit"
    assert action.target == f"job:{body['id']}"


async def test_the_same_key_answers_the_same_job_and_another_request_is_refused(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    first = await client.post("/admin/jobs", json=vendor("same"), headers=admin)
    again = await client.post("/admin/jobs", json=vendor("same"), headers=admin)
    other_company = await client.post(
        "/admin/jobs", json=vendor("same", company_id=32), headers=admin
    )
    changed = await client.post(
        "/admin/jobs", json=vendor("same", payload={"name": "Other"}), headers=admin
    )

    assert again.status_code == 202
    assert again.json() == {**first.json(), "duplicate": True}
    assert other_company.status_code == 202, "a key is unique per company"
    assert other_company.json()["id"] != first.json()["id"]
    assert changed.status_code == 409
    assert "idempotency_key 'same'" in changed.json()["detail"]
    assert await stored(db) == 2


@pytest.mark.parametrize(
    ("job", "loc"),
    [
        (vendor("x", resource_name="Widgets"), ["body", "resource_name"]),
        (vendor("x", resource_name="Submittals"), ["body", "resource_name"]),
        (vendor("x", project_id=900), ["body", "project_id"]),
        ({**rfi("x"), "project_id": None}, ["body", "project_id"]),
        (vendor("x", origin_id=None), ["body", "origin_id"]),
        ({**rfi("x"), "origin_id": "rfi-1"}, ["body", "origin_id"]),
        (rfi("x", subject=""), ["body", "payload", "subject"]),
        ({**rfi("x"), "payload": {"rfi": {"subject": "s"}}}, ["body", "payload"]),
        (vendor("x", payload={"id": 4, "name": "n"}), ["body", "payload", "id"]),
        (vendor("x", payload={"origin_id": "a", "name": "n"}), ["body", "payload", "origin_id"]),
        (vendor("x", operation="delete", origin_id=None, payload=None), ["body", "operation"]),
        ({**rfi("x"), "operation": "sync"}, ["body", "operation"]),
        ({**rfi("x"), "operation": "update"}, ["body", "resource_id"]),
        ({**rfi("x"), "resource_id": 5150}, ["body", "resource_id"]),
        (vendor("x", payload={"name": "n" * 40_000}), ["body", "payload"]),
        (vendor("x", origin_id="bad\nline"), ["body", "origin_id"]),
        (vendor("x", operation="upsert"), ["body", "operation"]),
        (vendor("x", path="/rest/v1.0/vendors"), ["body", "path"]),
        (vendor("x", company_id=0), ["body", "company_id"]),
        (vendor("x", idempotency_key=""), ["body", "idempotency_key"]),
    ],
)
async def test_a_job_that_cannot_be_sent_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    db: Runtime,
    admin: dict[str, str],
    job: dict[str, Any],
    loc: list[Any],
) -> None:
    answer = await client.post("/admin/jobs", json=job, headers=admin)

    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == loc
    assert answer.json()["detail"][0]["msg"]
    assert await stored(db) == 0
    assert await audit_rows(db) == []


async def test_a_delete_needs_the_resource_and_takes_no_payload(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    base = {"company_id": 31, "project_id": 900, "resource_name": "Observation Items",
            "operation": "delete", "idempotency_key": "d-1"}  # fmt: skip
    no_id = await client.post("/admin/jobs", json=base, headers=admin)
    with_payload = await client.post(
        "/admin/jobs", json={**base, "resource_id": 7001, "payload": {"name": "x"}}, headers=admin
    )
    ok = await client.post("/admin/jobs", json={**base, "resource_id": 7001}, headers=admin)

    assert no_id.json()["detail"][0]["loc"] == ["body", "resource_id"]
    assert with_payload.json()["detail"][0]["loc"] == ["body", "payload"]
    assert ok.status_code == 202
    assert await stored(db) == 1


async def test_a_bulk_submission_is_all_or_nothing_and_keeps_its_order(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    jobs = [vendor(f"b-{n}") for n in range(5)]
    refused = await client.post(
        "/admin/jobs/bulk", json={"jobs": [*jobs[:3], rfi("b-x", subject=None), *jobs[3:]]},
        headers=admin,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "jobs", 3, "payload", "subject"]
    assert await stored(db) == 0

    accepted = await client.post("/admin/jobs/bulk", json={"jobs": jobs}, headers=admin)
    assert accepted.status_code == 202
    ids = [j["id"] for j in accepted.json()["jobs"]]
    assert ids == sorted(ids)
    async with db.sessions() as session:
        keys = (await session.scalars(select(WriteJob.idempotency_key).order_by(WriteJob.id))).all()
    assert keys == [j["idempotency_key"] for j in jobs]
    [action] = [a for a in await audit_rows(db) if a.action == "jobs_submit"]
    assert action.detail is not None
    assert action.detail["jobs"] == 5
    assert action.target == f"jobs:{ids[0]}..{ids[-1]}"


async def test_a_bulk_submission_is_bounded(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    too_many = [vendor(f"m-{n}") for n in range(1001)]
    answer = await client.post("/admin/jobs/bulk", json={"jobs": too_many}, headers=admin)
    empty = await client.post("/admin/jobs/bulk", json={"jobs": []}, headers=admin)
    reused = await client.post(
        "/admin/jobs/bulk",
        json={"jobs": [vendor("r-1"), vendor("r-1", payload={"name": "Other"})]},
        headers=admin,
    )

    assert answer.status_code == 422
    assert empty.status_code == 422
    assert reused.status_code == 409
    assert reused.json()["detail"].startswith("jobs[1]:")
    assert await stored(db) == 0


async def test_a_body_too_large_is_refused_before_it_is_read(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    big = orjson.dumps(vendor("big", payload={"name": "n" * 300_000}))
    answer = await client.post(
        "/admin/jobs", content=big, headers={**admin, "Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert await stored(db) == 0


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00", b"{not json", b"[]", b'"job"', b"[" * 100_000, b'{"payload": ' * 5000],
)
async def test_hostile_bodies_are_refused_with_a_4xx(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], body: bytes
) -> None:
    for path in ("/admin/jobs", "/admin/jobs/bulk"):
        answer = await client.post(
            path, content=body, headers={**admin, "Content-Type": "application/json"}
        )
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert await stored(db) == 0


async def test_jobs_are_listed_by_status_and_company_with_cursors(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    ids = []
    for n in range(7):
        company = 31 if n % 2 == 0 else 32
        answer = await client.post(
            "/admin/jobs", json=vendor(f"l-{n}", company_id=company), headers=admin
        )
        ids.append(answer.json()["id"])
    await set_status(db, ids[0], JobStatus.FAILED)

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"company_id": 31, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/admin/jobs", params=params, headers=admin)).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    failed = (await client.get("/admin/jobs", params={"status": "failed"}, headers=admin)).json()
    # The schema publishes the cursor's pattern: anything else is invalid input.
    bad = await client.get("/admin/jobs", params={"cursor": "nope"}, headers=admin)

    assert seen == sorted((i for n, i in enumerate(ids) if n % 2 == 0), reverse=True)
    assert [j["id"] for j in failed["items"]] == [ids[0]]
    assert bad.status_code == 422


async def test_cancel_replay_and_resolve_follow_the_jobs_state(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    made = await client.post("/admin/jobs", json=rfi("c-1"), headers=admin)
    job_id = made.json()["id"]

    resolve_queued = await client.post(
        f"/admin/jobs/{job_id}/resolve", json={"resource_id": 5}, headers=admin
    )
    cancelled = await client.post(f"/admin/jobs/{job_id}/cancel", headers=admin)
    cancel_again = await client.post(f"/admin/jobs/{job_id}/cancel", headers=admin)
    replayed = await client.post(f"/admin/jobs/{job_id}/replay", headers=admin)
    replay_queued = await client.post(f"/admin/jobs/{job_id}/replay", headers=admin)
    await set_status(db, job_id, JobStatus.IN_DOUBT, sent_at=func.now())
    replay_in_doubt = await client.post(f"/admin/jobs/{job_id}/replay", headers=admin)
    resolved = await client.post(
        f"/admin/jobs/{job_id}/resolve", json={"resource_id": 5150}, headers=admin
    )
    missing = await client.post("/admin/jobs/999999/cancel", headers=admin)

    assert resolve_queued.status_code == 409
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancel_again.status_code == 409
    assert "cancelled" in cancel_again.json()["detail"]
    assert replayed.json()["status"] == "queued"
    assert replay_queued.status_code == 409
    assert replay_in_doubt.status_code == 409, "an in_doubt job is replayed only with force"
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "succeeded"
    assert resolved.json()["resource_id"] == 5150
    assert resolved.json()["sent_at"] is None
    assert missing.status_code == 404
    actions = [a.action for a in await audit_rows(db)]
    assert actions == ["jobs_submit", "job_cancel", "job_replay", "job_resolve"]


async def test_an_in_doubt_job_resolved_as_not_made_is_sent_again(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    job_id = (await client.post("/admin/jobs", json=rfi("n-1"), headers=admin)).json()["id"]
    await set_status(db, job_id, JobStatus.IN_DOUBT, sent_at=func.now(), attempts=3)

    resolved = await client.post(
        f"/admin/jobs/{job_id}/resolve", json={"resource_id": None}, headers=admin
    )
    missing_key = await client.post(f"/admin/jobs/{job_id}/resolve", json={}, headers=admin)

    assert resolved.status_code == 200
    assert resolved.json()["status"] == "queued"
    assert resolved.json()["sent_at"] is None
    assert resolved.json()["attempts"] == 0
    assert missing_key.status_code == 422


async def test_the_outcome_feed_is_read_in_order_from_a_cursor(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    ids = [
        (await client.post("/admin/jobs", json=vendor(f"e-{n}"), headers=admin)).json()["id"]
        for n in range(3)
    ]
    empty = (await client.get("/admin/jobs/events", headers=admin)).json()
    for job_id in ids:
        await client.post(f"/admin/jobs/{job_id}/cancel", headers=admin)
    first = (await client.get("/admin/jobs/events", params={"limit": 2}, headers=admin)).json()
    rest = (
        await client.get(
            "/admin/jobs/events", params={"after": first["next_cursor"]}, headers=admin
        )
    ).json()
    later = (
        await client.get("/admin/jobs/events", params={"after": rest["next_cursor"]}, headers=admin)
    ).json()
    by_company = (
        await client.get("/admin/jobs/events", params={"company_id": 32}, headers=admin)
    ).json()
    bad = await client.get("/admin/jobs/events", params={"after": "x"}, headers=admin)

    assert empty["items"] == []
    assert empty["has_more"] is False
    assert [e["job_id"] for e in first["items"]] == ids[:2]
    assert first["has_more"] is True
    assert [(e["job_id"], e["kind"]) for e in rest["items"]] == [(ids[2], "job.cancelled")]
    assert later["items"] == []
    assert by_company["items"] == []
    assert bad.status_code == 422
    async with db.sessions() as session:
        count = (
            await session.execute(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.type.like("job.%"))
            )
        ).scalar()
    assert count == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/jobs"),
        ("POST", "/admin/jobs/bulk"),
        ("GET", "/admin/jobs"),
        ("GET", "/admin/jobs/events"),
        ("GET", "/admin/jobs/1"),
        ("POST", "/admin/jobs/1/cancel"),
        ("POST", "/admin/jobs/1/replay"),
        ("POST", "/admin/jobs/1/resolve"),
    ],
)
async def test_every_jobs_route_needs_the_admin_token(
    client: httpx.AsyncClient, db: Runtime, method: str, path: str
) -> None:
    answer = await client.request(method, path, json=vendor("t"))
    assert answer.status_code == 401
    assert await stored(db) == 0
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(AdminAction))).scalar() == 0


async def test_the_openapi_documents_every_status_the_jobs_routes_answer(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    schema = (await client.get("/openapi.json")).json()
    submit = schema["paths"]["/admin/jobs"]["post"]["responses"]
    bulk = schema["paths"]["/admin/jobs/bulk"]["post"]["responses"]
    cancel = schema["paths"]["/admin/jobs/{job_id}/cancel"]["post"]["responses"]
    assert {"202", "401", "409", "413", "422"} <= set(submit)
    assert {"202", "401", "409", "413", "422"} <= set(bulk)
    assert {"200", "401", "404", "409", "422"} <= set(cancel)
    async with db.sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM write_jobs"))).scalar() == 0


@pytest.mark.parametrize(
    "name",
    [
        '"nul \\u0000 inside"',
        '"lone \\ud800 surrogate"',
        "NaN",
        "Infinity",
        "123456789012345678901234567890",
    ],
)
async def test_a_payload_that_cannot_be_stored_or_sent_is_refused(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str], name: str
) -> None:
    body = (
        '{"company_id": 31, "resource_name": "Company Vendors", "operation": "create", '
        f'"origin_id": "o-1", "idempotency_key": "k-1", "payload": {{"name": {name}}}}}'
    )
    answer = await client.post(
        "/admin/jobs", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "payload"]
    assert await stored(db) == 0


async def test_a_replayed_create_that_may_have_happened_is_looked_up_again_unless_forced(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    job_id = (await client.post("/admin/jobs", json=rfi("s-1"), headers=admin)).json()["id"]
    await set_status(db, job_id, JobStatus.IN_DOUBT, sent_at=func.now())
    await client.post(f"/admin/jobs/{job_id}/cancel", headers=admin)

    replayed = await client.post(f"/admin/jobs/{job_id}/replay", headers=admin)
    await set_status(db, job_id, JobStatus.IN_DOUBT)
    forced = await client.post(f"/admin/jobs/{job_id}/replay", json={"force": True}, headers=admin)

    assert replayed.json()["status"] == "queued"
    assert replayed.json()["sent_at"] is not None, "still in doubt: looked up before sending"
    assert forced.json()["status"] == "queued"
    assert forced.json()["sent_at"] is None, "forced: sent again knowingly"


def _noise(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any shape, hostile where it can be."""
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return rng.choice([0, -1, 1, 2**63, -(2**63) - 1, 31, 900, 10**30])
    if choice == 1:
        return rng.choice(STRINGS)
    if choice == 2:
        return rng.choice([None, True, False, 1.5, float("1e308")])
    if choice == 3:
        return rng.choice(list(resources.WRITABLE))
    if choice == 4:
        return rng.choice(["create", "update", "delete", "sync", "upsert"])
    if choice == 5:
        return rng.randrange(1, 10_000)
    if choice == 6:
        return [_noise(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = [*FIELDS, "name", "id", "x"]
    return {rng.choice(keys): _noise(rng, depth + 1) for _ in range(rng.randrange(4))}


STRINGS = ["", "RFIs", "Company Vendors", "create", "sync", "x" * 300, "nul\x00",
           "\ud83d\ude00", "lone \ud800", "../../rest/v1.0/vendors", "delete"]  # fmt: skip
FIELDS = ["company_id", "project_id", "resource_name", "operation", "payload", "resource_id",
          "origin_id", "idempotency_key"]  # fmt: skip


async def test_random_submissions_are_answered_202_409_or_422_never_5xx(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    rng = random.Random(19)
    seen: dict[int, int] = {}
    accepted = 0
    for n in range(400):
        body = {name: _noise(rng) for name in FIELDS if rng.random() < 0.85}
        if rng.random() < 0.5:
            body.update(vendor(f"f-{n}"))
            body[rng.choice(FIELDS)] = _noise(rng)
        path = "/admin/jobs" if n % 4 else "/admin/jobs/bulk"
        sent = body if path == "/admin/jobs" else {"jobs": [body, vendor(f"g-{n}")]}
        answer = await client.post(path, content=json.dumps(sent), headers={
            **admin, "Content-Type": "application/json"})  # fmt: skip
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code in (202, 400, 409, 422), (sent, answer.text)
        accepted += answer.status_code == 202
    assert seen.get(422, 0) > 100
    assert accepted >= 1
    async with db.sessions() as session:
        rows = (await session.scalars(select(WriteJob))).all()
    for row in rows:  # whatever was queued is sendable as it stands
        assert row.resource_name in resources.WRITABLE
        assert re.fullmatch(policy.KEY_PATTERN, row.idempotency_key)


async def test_a_jobs_token_reaches_the_jobs_and_nothing_else(
    settings: Settings, db: Runtime
) -> None:
    """JOBS_TOKEN: the connector's own system submits its writes without the admin API."""
    scoped = settings.model_copy(update={"jobs_token": [SecretStr("connector-jobs-token")]})
    application = create_app(scoped)
    jobs = {"Authorization": "Bearer connector-jobs-token"}
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            submitted = await c.post("/admin/jobs", json=vendor("j-1"), headers=jobs)
            listed = await c.get("/admin/jobs", headers=jobs)
            gates = await c.get("/admin/gates", headers=jobs)
            summary = await c.get("/admin/summary", headers=jobs)

    assert submitted.status_code == 202
    assert listed.status_code == 200
    assert gates.status_code == summary.status_code == 401
    [action] = await audit_rows(db)
    assert action.actor.startswith("jobs:")
    async with db.sessions() as session:
        [row] = (await session.scalars(select(WriteJob))).all()
    assert row.submitted_by == action.actor


async def test_a_thousand_jobs_fit_a_bulk_and_its_cap_is_its_own(
    settings: Settings, client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    """A bulk is larger than API_MAX_BODY_BYTES allows other routes: it has its own cap
    (WRITE_BULK_MAX_BODY_BYTES), read bounded like every body (app.bodies)."""
    jobs = [
        vendor(f"big-{n:04d}", payload={"name": f"Vendor {n} " + "x" * 60}) for n in range(1000)
    ]
    body = orjson.dumps({"jobs": jobs})
    assert len(body) > settings.api_max_body_bytes
    accepted = await client.post(
        "/admin/jobs/bulk", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert accepted.status_code == 202, accepted.text[:300]
    assert len(accepted.json()["jobs"]) == 1000

    small = settings.model_copy(update={"write_bulk_max_body_bytes": 2048})
    application = create_app(small)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            refused = await c.post(
                "/admin/jobs/bulk",
                content=orjson.dumps({"jobs": [vendor(f"s-{n}") for n in range(30)]}),
                headers={**admin, "Content-Type": "application/json"},
            )
    assert refused.status_code == 413
    assert await stored(db) == 1000


async def test_a_method_the_bulk_route_does_not_take_is_405_not_a_job_id(
    client: httpx.AsyncClient, db: Runtime, admin: dict[str, str]
) -> None:
    """`/admin/jobs/bulk` is not `/admin/jobs/{job_id}` with the id "bulk" (schemathesis
    ST204: an undeclared method answers 405 naming the declared ones)."""
    answer = await client.get("/admin/jobs/bulk", headers=admin)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
