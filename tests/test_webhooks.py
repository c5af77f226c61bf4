"""POST /webhooks/procore against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select, text

from app.events.dispatch import dispatch_once
from app.gates.service import operator_unpark, release_opened
from app.main import create_app
from app.models import Event, EventStatus, Gate, GateScope, GateState
from app.queue import PROCESS_EVENTS
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests import payloads
from tests.conftest import CLIENT_ID, WEBHOOK_TOKEN, WEBHOOK_TOKEN_OLD, make_settings

URL = "/webhooks/procore"
AUTH = {"Authorization": WEBHOOK_TOKEN}


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        URL, content=content, headers={**AUTH, "Content-Type": "application/json", **headers}
    )


async def count_events(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Event))).scalar_one()


async def load(runtime: Runtime, dedupe_key: str) -> Event:
    async with runtime.sessions() as session:
        return (
            await session.execute(select(Event).where(Event.dedupe_key == dedupe_key))
        ).scalar_one()


async def queued_job_ids(redis: ArqRedis, settings: Settings) -> list[list[int]]:
    """The event-id batches of the jobs waiting in this suite's arq queue."""
    batches = []
    for job in await redis.queued_jobs(queue_name=settings.queue_name):
        batches.append(list(job.args[0]))
    return batches


# --- refusals: the right status, and nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("headers", "label"),
    [({}, "missing"), ({"Authorization": "nope"}, "wrong"), ({"Authorization": ""}, "empty")],
)
async def test_bad_authorization_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, db: Runtime, headers: dict[str, str], label: str
) -> None:
    request_headers = {"Content-Type": "application/json", **headers}
    response = await client.post(URL, content=json.dumps(payloads.v2()), headers=request_headers)
    assert response.status_code == 401, label
    assert "Authorization" in response.json()["detail"]
    assert await count_events(db) == 0


async def test_previous_token_still_accepted_during_rotation(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    response = await post(client, payloads.v2(), Authorization=WEBHOOK_TOKEN_OLD)
    assert response.status_code == 202
    assert await count_events(db) == 1


async def test_oversized_body_is_refused_with_413(
    client: httpx.AsyncClient, db: Runtime, settings: Settings
) -> None:
    body = payloads.v2(padding="x" * settings.webhook_max_body_bytes)
    response = await post(client, body)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert await count_events(db) == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"ulid": ', b"\xff\xfe{}", b'{"a": NaN}', b""],
    ids=["text", "truncated", "invalid-utf8", "nan", "empty"],
)
async def test_non_json_is_refused_with_400(
    client: httpx.AsyncClient, db: Runtime, body: bytes
) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    assert response.json()["detail"] == "body is not valid JSON"
    assert await count_events(db) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([payloads.v2()], "body"),
        ("a string", "body"),
        (payloads.v2(ulid=None), "ulid"),
        (payloads.v2(ulid=12345), "ulid"),
        (payloads.v2(ulid="x" * 65), "ulid"),
        ({k: v for k, v in payloads.v2().items() if k != "ulid"}, "ulid"),
        (payloads.v4(id=None), "id"),
        (payloads.v2(company_id=None), "company_id"),
        (payloads.v2(company_id="thirty-one"), "company_id"),
        (payloads.v2(company_id=2**63), "company_id"),
        (payloads.v2(company_id=-4), "company_id"),
        (payloads.v2(company_id=True), "company_id"),
        (payloads.v4(company_id=""), "company_id"),
    ],
    ids=[
        "list",
        "string",
        "null-ulid",
        "numeric-ulid",
        "long-ulid",
        "no-ulid",
        "v4-null-id",
        "null-company",
        "word-company",
        "company-over-int64",
        "negative-company",
        "bool-company",
        "v4-empty-company",
    ],
)
async def test_unroutable_json_is_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, db: Runtime, body: Any, field: str
) -> None:
    response = await post(client, body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert await count_events(db) == 0


# --- acceptance and normalisation --------------------------------------------------------


async def test_v2_payload_is_stored_normalised(client: httpx.AsyncClient, db: Runtime) -> None:
    body = payloads.v2(api_version="v2", brand_new_field={"kept": True})
    response = await post(client, body)
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "accepted"
    event = await load(db, body["ulid"])
    assert answer["event_id"] == event.id
    assert event.payload_version == "v2"
    assert event.procore_event_id == body["id"]
    assert event.procore_event_id is not None
    assert event.procore_event_id > 2**53
    assert (event.company_id, event.project_id, event.user_id) == (31, 900, 77)
    assert (event.resource_name, event.resource_id) == ("RFIs", 5150)
    assert (event.event_type, event.reason) == ("update", "update")
    assert event.status is EventStatus.QUEUED
    assert event.occurred_at is not None
    assert event.occurred_at.microsecond == 123456
    assert event.raw["brand_new_field"] == {"kept": True}
    assert event.raw["id"] == body["id"]


async def test_v3_payload_is_stored_as_v3(client: httpx.AsyncClient, db: Runtime) -> None:
    body = payloads.v3(related_resources=[{"id": 12, "name": "Direct Costs"}])
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["ulid"])
    assert event.payload_version == "v3"
    assert event.raw["related_resources"] == [{"id": 12, "name": "Direct Costs"}]
    assert event.status is EventStatus.QUEUED


async def test_v4_payload_with_string_ids_is_stored_normalised(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = payloads.v4(company_id="9007199254741000", resource_id="9007199254741001")
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["id"])
    assert event.payload_version == "v4"
    assert event.procore_event_id is None
    assert event.company_id == 9007199254741000
    assert event.resource_id == 9007199254741001
    assert (event.resource_name, event.event_type) == ("Submittals", "update")
    assert event.status is EventStatus.QUEUED


@pytest.mark.parametrize(("reason", "kind"), [("created", "create"), ("deleted", "delete")])
async def test_v4_past_tense_reasons_are_understood(
    client: httpx.AsyncClient, db: Runtime, reason: str, kind: str
) -> None:
    body = payloads.v4(reason=reason)
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["id"])
    assert (event.event_type, event.reason, event.status) == (kind, reason, EventStatus.QUEUED)


async def test_company_level_event_without_project_and_null_metadata(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = payloads.v2(
        resource_name="Company Users",
        metadata=dict.fromkeys(payloads.v2()["metadata"]),
    )
    del body["project_id"]
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["ulid"])
    assert event.project_id is None
    assert event.source_application_id is None
    assert event.status is EventStatus.QUEUED


@pytest.mark.parametrize(
    ("overrides", "note"),
    [
        ({"event_type": "archived"}, "unsupported reason"),
        ({"resource_name": "Daily Logs"}, "unsupported resource"),
        ({"resource_id": "abc"}, "resource_id is not a 64-bit integer"),
        ({"resource_id": None}, "no resource_id"),
        ({"project_id": None}, "needs a project_id"),
    ],
)
async def test_unusable_but_routable_events_are_stored_as_unsupported(
    client: httpx.AsyncClient, db: Runtime, redis: ArqRedis, overrides: dict[str, Any], note: str
) -> None:
    body = payloads.v2(**overrides)
    response = await post(client, body)
    assert response.status_code == 202
    event = await load(db, body["ulid"])
    assert event.status is EventStatus.UNSUPPORTED
    assert event.last_error is not None
    assert note in event.last_error
    assert event.finished_at is not None


async def test_integer_beyond_64_bits_elsewhere_in_the_body_is_kept(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = json.dumps(payloads.v2()).replace('"user_id": 77', '"user_id": 77, "huge": ' + "9" * 30)
    response = await post(client, body.encode())
    assert response.status_code == 202
    ulid = json.loads(body)["ulid"]
    event = await load(db, ulid)
    assert event.raw["huge"] == int("9" * 30)


async def test_nul_character_in_a_field_is_stored_replaced(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = payloads.v2(note="a\u0000b")
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["ulid"])
    assert event.raw["note"] == "a\ufffdb"


async def test_events_caused_by_this_app_are_ignored(
    client: httpx.AsyncClient, db: Runtime, redis: ArqRedis, settings: Settings
) -> None:
    metadata = {**payloads.v2()["metadata"], "source_application_id": CLIENT_ID}
    body = payloads.v2(metadata=metadata)
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["ulid"])
    assert event.status is EventStatus.IGNORED
    assert event.source_application_id == CLIENT_ID
    await asyncio.sleep(0.2)
    assert all(event.id not in batch for batch in await queued_job_ids(redis, settings))


# --- dedupe ---------------------------------------------------------------------------------


async def test_duplicate_delivery_answers_200_duplicate(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = payloads.v2()
    assert (await post(client, body)).status_code == 202
    again = await post(client, body)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert await count_events(db) == 1


async def test_ulid_case_does_not_defeat_dedupe(client: httpx.AsyncClient, db: Runtime) -> None:
    body = payloads.v2()
    assert (await post(client, body)).status_code == 202
    lower = {**body, "ulid": body["ulid"].lower()}
    assert (await post(client, lower)).json() == {"status": "duplicate"}


async def test_hundred_concurrent_duplicates_store_exactly_one_row(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = payloads.v4()
    responses = await asyncio.gather(*(post(client, body) for _ in range(100)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 99 + [202]
    assert await count_events(db) == 1


async def test_concurrent_distinct_events_are_all_stored(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    bodies = [payloads.v2() for _ in range(200)]
    responses = await asyncio.gather(*(post(client, b) for b in bodies))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["event_id"] for r in responses}) == 200
    assert await count_events(db) == 200


# --- queue hand-off -------------------------------------------------------------------------


async def test_accepted_event_is_handed_to_the_queue(
    client: httpx.AsyncClient, db: Runtime, redis: ArqRedis, settings: Settings
) -> None:
    response = await post(client, payloads.v2())
    event_id = response.json()["event_id"]
    for _ in range(50):
        batches = await queued_job_ids(redis, settings)
        if batches:
            break
        await asyncio.sleep(0.02)
    assert [event_id] in batches


async def test_webhooks_committed_close_together_are_one_job(
    settings: Settings, db: Runtime, redis: ArqRedis
) -> None:
    """A trickle of webhooks within INGEST_HANDOFF_WINDOW_SECONDS is handed over as one job
    (a job's fixed cost is shared); a window's worth beyond JOB_BATCH_SIZE is split."""
    gathered = make_settings(
        settings.database_url, ingest_handoff_window_seconds=0.5, job_batch_size=4
    )
    app = create_app(gathered)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = []
            for _ in range(6):
                ids.append((await post(client, payloads.v2())).json()["event_id"])
            for _ in range(100):
                batches = await queued_job_ids(redis, gathered)
                if sum(len(b) for b in batches) == len(ids):
                    break
                await asyncio.sleep(0.02)
    assert sorted(len(b) for b in batches) == [2, 4]
    assert sorted(i for b in batches for i in b) == sorted(ids)


async def test_redis_down_still_answers_202_and_dispatcher_enqueues_later(
    settings: Settings, db: Runtime, redis: ArqRedis
) -> None:
    dead_redis = make_settings(settings.database_url, redis_url="redis://127.0.0.1:1/15")
    app = create_app(dead_redis)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = payloads.v2()
            response = await post(client, body)
        assert response.status_code == 202
        event_id = response.json()["event_id"]
    # The failed hand-off released the dispatch lease: the row is due for the dispatcher.
    event = await load(db, body["ulid"])
    assert event.status is EventStatus.QUEUED
    assert event.locked_until is None
    assert await queued_job_ids(redis, settings) == []

    # Redis is back (the suite's real one): the dispatcher's next tick enqueues the row.
    assert await dispatch_once(db) == 1
    assert [event_id] in await queued_job_ids(redis, settings)
    event = await load(db, body["ulid"])
    assert event.locked_until is not None
    # ...and not twice: its dispatch lease holds it until the worker claims it.
    assert await dispatch_once(db) == 0


async def test_postgres_unreachable_answers_503_and_readiness_fails(settings: Settings) -> None:
    dead_db = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", redis_url=settings.redis_url
    )
    app = create_app(dead_db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await post(client, payloads.v2())
            ready = await client.get("/health/ready")
            live = await client.get("/health/live")
    assert response.status_code == 503
    assert "storage unavailable" in response.json()["detail"]
    assert ready.status_code == 503
    assert live.status_code == 200


async def test_postgres_that_hangs_is_answered_503_in_time_and_the_retry_completes(
    settings: Settings, db: Runtime
) -> None:
    """A Postgres that takes the connection but not the row (here: a lock held on `events`)
    gets the delivery answered 503 within WEBHOOK_STORE_TIMEOUT_SECONDS, before Procore's own
    5 s delivery timeout (FACTS.md §2), so Procore retries; the retry after the lock is gone
    stores the event, or finds it stored by the batch that waited."""
    app = create_app(settings.model_copy(update={"webhook_store_timeout_seconds": 0.5}))
    body = payloads.v2()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with db.engine.connect() as holder:
                await holder.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
                started = asyncio.get_running_loop().time()
                held = await post(client, body)
                waited = asyncio.get_running_loop().time() - started
                await holder.rollback()
            retried = await post(client, body)
    assert held.status_code == 503, held.text
    assert "storage unavailable" in held.json()["detail"]
    assert 0.5 <= waited < 2.0
    assert retried.status_code in {200, 202}, retried.text
    assert await count_events(db) == 1


async def test_an_ingest_connection_postgres_drops_is_replaced_and_nothing_is_lost(
    db: Runtime,
) -> None:
    """Each flush slot keeps its own connection; one that Postgres ends (a restart, a
    failover, an operator's pg_terminate_backend) is replaced by a new one. A batch that met
    the dying connection, if any, is answered unavailable (Procore retries it), never
    acknowledged; nothing is stored that was not accepted."""
    from app.webhooks.payloads import read_event
    from app.webhooks.service import Ingester, IngestStatus, StorageUnavailable

    def event() -> Any:
        return read_event(json.dumps(payloads.v2()).encode(), own_client_id=CLIENT_ID)

    ingester = Ingester(db, concurrency=1)
    ingester.start()
    accepted: list[str] = []
    try:
        first = event()
        assert (await ingester.submit(first)).status is IngestStatus.ACCEPTED
        accepted.append(first.dedupe_key)
        ingest_backends = text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'procore-hooks-ingest'"
            " AND datname = current_database()"
        )
        async with db.engine.connect() as admin:
            before = list((await admin.execute(ingest_backends)).scalars())
            assert len(before) == 1
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before[0]})
        unavailable = 0
        for _ in range(5):
            e = event()
            try:
                result = await ingester.submit(e)
            except StorageUnavailable:
                unavailable += 1
                continue
            assert result.status is IngestStatus.ACCEPTED
            accepted.append(e.dedupe_key)
        async with db.engine.connect() as admin:
            after = list((await admin.execute(ingest_backends)).scalars())
    finally:
        await ingester.stop()
    assert unavailable <= 1
    # (The ended backend may still be listed for a moment while it exits.)
    assert len(set(after) - set(before)) == 1, "the slot opened one new connection"
    async with db.sessions() as session:
        stored = set((await session.execute(select(Event.dedupe_key))).scalars())
    assert stored == set(accepted)


@pytest.mark.parametrize(
    ("user", "database"),
    [
        ("postgres", "ph_no_such_database"),  # 3D000: no such database
        ("ph_no_such_role", None),  # 28000: the login is refused
    ],
)
async def test_a_database_that_refuses_the_connection_answers_503_not_422(
    settings: Settings, db: Runtime, user: str, database: str | None
) -> None:
    """Postgres answering but refusing the connection (no such database, a login it refuses)
    is the storage being unavailable, not the event's fault: 503, so Procore retries."""
    from sqlalchemy import make_url

    url = make_url(db.settings.database_url).set(username=user)
    if database is not None:
        url = url.set(database=database)
    app = create_app(
        make_settings(url.render_as_string(hide_password=False), redis_url=settings.redis_url)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await post(client, payloads.v2())
    assert response.status_code == 503, response.text
    assert "storage unavailable" in response.json()["detail"]


async def test_a_value_postgres_refuses_is_refused_alone_and_its_batch_is_stored(
    settings: Settings, db: Runtime
) -> None:
    """One INSERT carries a whole batch; an event whose values cannot be stored (a payload
    that is not JSON text, a string no encoder takes) fails only itself, with a reason."""
    from dataclasses import replace

    from app.webhooks.payloads import read_event
    from app.webhooks.service import Ingester, IngestStatus, StorageRefused

    def event() -> Any:
        return read_event(json.dumps(payloads.v2()).encode(), own_client_id=CLIENT_ID)

    good = [event() for _ in range(6)]
    not_json = replace(event(), raw="{not json")
    unencodable = replace(event(), resource_name="RFIs\ud800")
    ingester = Ingester(db)
    ingester.start()
    try:
        outcomes = await asyncio.gather(
            *(ingester.submit(e) for e in [*good[:3], not_json, unencodable, *good[3:]]),
            return_exceptions=True,
        )
    finally:
        await ingester.stop()
    refused = [o for o in outcomes if isinstance(o, StorageRefused)]
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(refused) == 2, outcomes
    assert [o.status for o in accepted] == [IngestStatus.ACCEPTED] * 6
    assert await count_events(db) == 6
    async with db.sessions() as session:
        stored = set((await session.execute(select(Event.dedupe_key))).scalars())
    assert stored == {e.dedupe_key for e in good}


async def test_webhooks_arriving_during_a_write_are_written_together_next(db: Runtime) -> None:
    """Group commit: a lone webhook is written at once; those arriving while its INSERT is in
    flight gather, and the slot writes them in one INSERT as soon as the first commits. After
    stop, a submit is answered unavailable (Procore retries) and nothing more is stored."""
    from app.webhooks.payloads import read_event
    from app.webhooks.service import Ingester, IngestStatus, StorageUnavailable

    def event() -> Any:
        return read_event(json.dumps(payloads.v2()).encode(), own_client_id=CLIENT_ID)

    ingester = Ingester(db, concurrency=1)
    written: list[int] = []
    first_in_flight, release_first = asyncio.Event(), asyncio.Event()
    insert = ingester._insert

    async def watched(slot: Any, events: Any, *, handoff: bool) -> Any:
        written.append(len(events))
        if len(written) == 1:
            first_in_flight.set()
            await release_first.wait()
        return await insert(slot, events, handoff=handoff)

    ingester._insert = watched  # type: ignore[method-assign]
    ingester.start()
    try:
        lone = asyncio.create_task(ingester.submit(event()))
        await asyncio.wait_for(first_in_flight.wait(), 5)
        gathered = [asyncio.create_task(ingester.submit(event())) for _ in range(10)]
        await asyncio.sleep(0.05)
        assert written == [1], "nothing else is written while the only slot is busy"
        release_first.set()
        results = await asyncio.wait_for(asyncio.gather(lone, *gathered), 10)
    finally:
        await ingester.stop()
    assert written == [1, 10]
    assert [r.status for r in results] == [IngestStatus.ACCEPTED] * 11
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(ingester.submit(event()), 5)
    assert await count_events(db) == 11


async def test_a_defect_in_a_flush_answers_its_batch_unavailable_logs_once_and_the_slot_goes_on(
    db: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while writing a batch (a defect, not Postgres) answers that
    batch 503, so Procore retries; it is logged once, with its traceback; the slot lives on and
    writes the next batch."""
    from app.webhooks import service
    from app.webhooks.payloads import read_event
    from app.webhooks.service import Ingester, IngestStatus, StorageUnavailable

    def event() -> Any:
        return read_event(json.dumps(payloads.v2()).encode(), own_client_id=CLIENT_ID)

    logged: list[tuple[str, str, dict[str, Any]]] = []

    class Recorder:
        def __getattr__(self, level: str) -> Any:
            return lambda name, **fields: logged.append((level, name, fields))

    encode = service._batch_json
    calls = 0

    def broken_once(events: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a defect")
        return encode(events)

    monkeypatch.setattr(service, "_batch_json", broken_once)
    monkeypatch.setattr(service, "log", Recorder())
    ingester = Ingester(db, concurrency=1)
    ingester.start()
    try:
        with pytest.raises(StorageUnavailable, match="a defect"):
            await asyncio.wait_for(ingester.submit(event()), 5)
        stored = await asyncio.wait_for(ingester.submit(event()), 5)
    finally:
        await ingester.stop()
    # (Other lines, a hand-off paused by a full queue say, are not this test's business.)
    names = [name for _, name, _ in logged]
    assert names.count("webhook.flush_failed") == 1
    assert "webhook.storage_unavailable" not in names
    assert ("exception", "webhook.flush_failed", {"events": 1}) in logged
    assert stored.status is IngestStatus.ACCEPTED
    assert await count_events(db) == 1


async def test_events_written_while_shutting_down_are_answered(
    settings: Settings, db: Runtime
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            pending = [asyncio.create_task(post(client, payloads.v2())) for _ in range(20)]
            await asyncio.sleep(0)
            responses = await asyncio.gather(*pending)
    assert {r.status_code for r in responses} == {202}
    assert await count_events(db) == 20


async def test_dispatcher_takes_work_fairly_across_companies(
    settings: Settings, db: Runtime, redis: ArqRedis
) -> None:
    # Rounds of at most 10 rows per company, until 30 rows wait in the queue.
    fair = make_settings(
        settings.database_url,
        dispatch_batch_size=30,
        dispatch_per_company=10,
        dispatch_max_backlog=30,
        job_batch_size=5,
    )
    runtime = open_runtime(fair, name="test")
    try:
        async with runtime.sessions() as session, session.begin():
            for company, count in ((1, 500), (2, 3), (3, 3)):
                for i in range(count):
                    session.add(
                        Event(
                            dedupe_key=payloads.new_ulid(),
                            payload_version="v2",
                            company_id=company,
                            project_id=1,
                            resource_name="RFIs",
                            resource_id=i,
                            event_type="update",
                            raw={},
                            status=EventStatus.QUEUED,
                        )
                    )
        assert await dispatch_once(runtime) == 30
        batches = await queued_job_ids(redis, settings)
        async with runtime.sessions() as session:
            companies = dict(
                (
                    await session.execute(
                        select(Event.id, Event.company_id).where(
                            Event.id.in_([i for b in batches for i in b])
                        )
                    )
                ).all()
            )
        per_company: dict[int, int] = {}
        for batch in batches:
            assert len(batch) <= 5
            assert len({companies[i] for i in batch}) == 1, "a job serves one company"
            for i in batch:
                per_company[companies[i]] = per_company.get(companies[i], 0) + 1
        # The small companies got all their rows in the first round; the big one filled the
        # rest of the queue's room over the next rounds, and the tick stopped at the cap.
        assert per_company == {1: 24, 2: 3, 3: 3}
        assert await dispatch_once(runtime) == 0
    finally:
        await runtime.close()


async def test_deeply_nested_body_is_refused_with_400(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    response = await post(client, b'{"a": ' * 5000 + b"1" + b"}" * 5000)
    assert response.status_code == 400
    assert response.json()["detail"] == "body is nested too deeply"
    assert await count_events(db) == 0


@pytest.mark.parametrize("ulid", [None, "valid"], ids=["invalid-ulid", "valid-ulid"])
async def test_deep_body_that_must_be_rewritten_is_refused_with_400(
    client: httpx.AsyncClient, db: Runtime, ulid: str | None
) -> None:
    # 900 levels parse, but a NUL character makes the body be rewritten before it is stored,
    # and that rewrite is too deep: a clear refusal, not a 500.
    body = payloads.v2(event_type="\u0000", ulid=payloads.new_ulid() if ulid else -1.5e34)
    content = json.dumps(body).encode()
    content = content[:-1] + b', "deep": ' + b"[" * 900 + b"]" * 900 + b"}"
    response = await post(client, content)
    assert response.status_code == 400
    assert response.json()["detail"] == "body is nested too deeply"
    assert await count_events(db) == 0


@pytest.mark.parametrize("digits", ["\u00b2", "\u0663"])
async def test_non_ascii_digits_are_not_ids(
    client: httpx.AsyncClient, db: Runtime, digits: str
) -> None:
    refused = await post(client, payloads.v4(company_id=digits))
    assert refused.status_code == 422
    assert refused.json()["field"] == "company_id"
    body = payloads.v4(resource_id=digits)
    assert (await post(client, body)).status_code == 202
    event = await load(db, body["id"])
    assert event.status is EventStatus.UNSUPPORTED
    assert event.resource_id is None


async def test_number_beyond_float_range_is_kept_as_its_literal(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    body = json.dumps(payloads.v2()).replace('"user_id": 77', '"user_id": 77, "big": 1e400')
    assert (await post(client, body.encode())).status_code == 202
    event = await load(db, json.loads(body.replace("1e400", "0"))["ulid"])
    assert event.raw["big"] == "1e400"


# --- hand-off: parked scopes and a queue that is behind ----------------------------------


async def park(runtime: Runtime, scope: GateScope, company_id: int, project_id: int | None) -> int:
    key = f"company:{company_id}" if project_id is None else f"project:{company_id}:{project_id}"
    gate = Gate(
        scope_key=key,
        scope=scope,
        company_id=company_id,
        project_id=project_id,
        state=GateState.PARKED,
        signals=3,
        parked_by="policy",
        diagnosis="not_installed",
        remediation=f"install the app in company {company_id}",
    )
    async with runtime.sessions() as session, session.begin():
        session.add(gate)
    return gate.id


async def jobs_settled(redis: ArqRedis, settings: Settings, count: int) -> list[list[int]]:
    """The queued batches, once `count` of them are there (hand-offs run in the background)."""
    for _ in range(100):
        batches = await queued_job_ids(redis, settings)
        if len(batches) >= count:
            return batches
        await asyncio.sleep(0.02)
    return await queued_job_ids(redis, settings)


async def test_event_of_a_parked_company_is_stored_parked_without_a_job(
    client: httpx.AsyncClient, db: Runtime, redis: ArqRedis, settings: Settings
) -> None:
    gate_id = await park(db, GateScope.COMPANY, 31, None)
    parked_body, other_body = payloads.v2(), payloads.v2(company_id=32)
    parked = await post(client, parked_body)
    other = await post(client, other_body)
    assert parked.status_code == other.status_code == 202

    event = await load(db, parked_body["ulid"])
    assert event.status is EventStatus.PARKED
    assert event.gate_id == gate_id
    assert event.last_error == "not_installed: install the app in company 31"
    assert event.locked_until is None
    assert event.finished_at is None
    # Only the other company's event went to the queue.
    assert await jobs_settled(redis, settings, 1) == [[other.json()["event_id"]]]
    assert (await load(db, other_body["ulid"])).status is EventStatus.QUEUED

    # A duplicate of the parked event is still a duplicate, and nothing more is stored.
    again = await post(client, parked_body)
    assert again.status_code == 200
    assert await count_events(db) == 2

    # The gate opens: the release sweep returns the event to the queue.
    async with db.sessions() as session, session.begin():
        assert await operator_unpark(
            session, gate_id, reason="installed", threshold=db.settings.update_pending_projects
        )
    assert await release_opened(db) == 1
    event = await load(db, parked_body["ulid"])
    assert event.status is EventStatus.QUEUED
    assert event.gate_id is None


async def test_event_of_a_parked_project_is_parked_and_other_projects_flow(
    client: httpx.AsyncClient, db: Runtime, redis: ArqRedis, settings: Settings
) -> None:
    gate_id = await park(db, GateScope.PROJECT, 31, 902)
    held_body, flowing_body = payloads.v2(project_id=902), payloads.v2(project_id=900)
    held = await post(client, held_body)
    flowing = await post(client, flowing_body)
    assert held.status_code == flowing.status_code == 202
    event = await load(db, held_body["ulid"])
    assert (event.status, event.gate_id) == (EventStatus.PARKED, gate_id)
    assert await jobs_settled(redis, settings, 1) == [[flowing.json()["event_id"]]]


async def test_a_queue_that_is_behind_leaves_new_rows_to_the_dispatcher(
    settings: Settings, db: Runtime, redis: ArqRedis
) -> None:
    behind = make_settings(settings.database_url, ingest_handoff_max_jobs=2)
    # Two jobs already wait: the queue is at its hand-off limit.
    for event_id in (10**9, 10**9 + 1):
        await redis.enqueue_job(PROCESS_EVENTS, [event_id], _queue_name=behind.queue_name)
    app = create_app(behind)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # The first arrival has the receiver look at the queue; later ones see the verdict.
            await post(client, payloads.v2())
            await asyncio.sleep(0.1)
            bodies = [payloads.v2(resource_id=i) for i in range(3)]
            answers = [await post(client, body) for body in bodies]
            assert {a.status_code for a in answers} == {202}
            left = [await load(db, body["ulid"]) for body in bodies]
            assert all(e.status is EventStatus.QUEUED and e.locked_until is None for e in left)
            assert len(await jobs_settled(redis, behind, 3)) == 3  # the two, and the first's

            # The dispatcher hands them out (it keeps its own backlog cap)...
            runtime = open_runtime(behind, name="test")
            try:
                assert await dispatch_once(runtime) == 3
            finally:
                await runtime.close()
            # ...and once the workers have caught up, the receiver hands off directly again.
            await redis.delete(behind.queue_name)
            await asyncio.sleep(0.6)
            await post(client, payloads.v2())
            await asyncio.sleep(0.1)
            resumed_body = payloads.v2()
            resumed = await post(client, resumed_body)
            assert (await load(db, resumed_body["ulid"])).locked_until is not None
            batches = await jobs_settled(redis, behind, 1)
            assert [resumed.json()["event_id"]] in batches


# --- the registry at the receiver -----------------------------------------------------------


async def test_a_line_item_event_brings_its_parent_along(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    """A v3.0 payload's `related_resources` names the parent of a line item (FACTS.md §1): the
    registry says a Direct Cost Line Item's parent is refreshed too, as an event of its own."""
    body = payloads.v3(
        resource_name="Direct Cost Line Items",
        resource_id=9611,
        related_resources=[{"id": 9601, "name": "Direct Costs"}, {"id": 1, "name": "Other"}],
    )
    assert (await post(client, body)).status_code == 202
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(
                    Event.resource_name, Event.resource_id, Event.status, Event.event_type
                ).order_by(Event.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("Direct Cost Line Items", 9611, EventStatus.QUEUED, "update"),
        ("Direct Costs", 9601, EventStatus.QUEUED, "update"),
    ]
    # Delivered again: both are duplicates, nothing new.
    assert (await post(client, body)).json() == {"status": "duplicate"}
    assert await count_events(db) == 2


async def test_deprecated_fanout_updates_are_one_event_of_the_company_type(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    """`announcements/webhook_fanout_migration.md`: from 2026-06-30 Project Vendors updates are
    served by Company Vendors ("one event per actual contact change. No fanout"); during the
    cutover, dedupe on resource_id + event timestamp."""
    fanned = [
        payloads.v2(resource_name="Project Vendors", resource_id=4101, project_id=project)
        for project in (900, 901, 903)
    ]
    answers = [await post(client, body) for body in fanned]
    assert [a.status_code for a in answers] == [202, 200, 200]
    assert await count_events(db) == 1
    async with db.sessions() as session:
        event = (await session.execute(select(Event))).scalar_one()
    assert (event.resource_name, event.resource_id, event.project_id) == (
        "Company Vendors",
        4101,
        None,
    )
    assert event.raw["resource_name"] == "Project Vendors"  # what Procore sent is kept
    assert "served as Company Vendors" in (event.last_error or "")
    # A creation is still the project's own event.
    created = payloads.v2(resource_name="Project Vendors", resource_id=4101, event_type="create")
    assert (await post(client, created)).status_code == 202
    assert (await load(db, created["ulid"])).resource_name == "Project Vendors"


async def test_every_registered_type_is_supported_and_an_unknown_one_is_not(
    client: httpx.AsyncClient, db: Runtime
) -> None:
    from app.registry import resources

    for name in resources.NAMES:
        kind = resources.REGISTRY[name]
        body = payloads.v2(
            resource_name=name,
            event_type="create",
            project_id=None if kind.company_level else 900,
        )
        assert (await post(client, body)).status_code == 202, name
        assert (await load(db, body["ulid"])).status is EventStatus.QUEUED, name
    unknown = payloads.v2(resource_name="Widgets")
    assert (await post(client, unknown)).status_code == 202
    stored = await load(db, unknown["ulid"])
    assert stored.status is EventStatus.UNSUPPORTED
    assert "unsupported resource 'Widgets'" in (stored.last_error or "")
