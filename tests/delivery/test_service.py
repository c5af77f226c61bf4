"""Delivery rounds against a real destination on a loopback port, which verifies every
delivery with the Standard Webhooks reference library."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError

from app.delivery import destinations, policy, sender, service, signing
from app.feed import messages, outbox
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from tests.conftest import make_settings
from tests.delivery.receiver import Delivery, Destination
from tests.factories import DEV_RULES, add_destination, change, delete, snapshot


async def test_changes_are_delivered_signed_in_change_order(
    drt: Runtime, destination: Destination
) -> None:
    created = await add_destination(drt, destination)
    await change(drt, [snapshot(1), snapshot(2)])
    await change(drt, [snapshot(1, title="again")])
    await delete(drt, 2)

    # The feed holds each resource's newest state once: 1 (changed twice) and 2 (deleted).
    assert await service.deliver(drt, created.id) == 2

    got = destination.delivered()
    assert destination.unverified == []
    assert [(d.type, d.data["resource_id"]) for d in got] == [
        ("resource.created", 1),  # new to the destination, though changed twice since
        ("resource.deleted", 2),
    ]
    assert got[0].data["change_seq"] < got[1].data["change_seq"]
    assert "object" not in got[0].data  # include_object is off
    assert all(d.signatures[0].startswith("v1,") for d in got)

    await change(drt, [snapshot(1, title="third")])
    assert await service.deliver(drt, created.id) == 1
    [last] = destination.delivered()[2:]
    assert (last.type, last.data["resource_id"]) == ("resource.updated", 1)
    assert last.data["change_seq"] > got[1].data["change_seq"]


async def _state(runtime: Runtime, destination_id: int) -> dict[str, object]:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT state, failures, probe_attempt, next_attempt_at, delivered, dead,"
                    " failed, last_error FROM destinations WHERE id = :id"
                ),
                {"id": destination_id},
            )
        ).one()
    return dict(row._mapping)


async def _attempts(runtime: Runtime, destination_id: int) -> list[dict[str, object]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT message_id, outcome, status, error, at, replay FROM delivery_attempts"
                " WHERE destination_id = :id ORDER BY id"
            ),
            {"id": destination_id},
        )
        return [dict(r._mapping) for r in rows]


async def _deliver_until(
    runtime: Runtime, destination_id: int, done: Callable[[], bool], timeout_s: float = 30
) -> None:
    """Run delivery rounds as the workers would (each as soon as the rules allow one)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        await service.deliver(runtime, destination_id, budget_s=1.0)
        await asyncio.sleep(0.02)


async def test_a_destination_down_is_parked_at_the_threshold_probed_and_released_in_order(
    delivery_settings: Callable[..., Settings], db: Runtime, destination: Destination
) -> None:
    # Probes a second or more apart: the round "before the probe is due" below stays before it
    # on a loaded machine too.
    runtime = open_runtime(
        delivery_settings(
            delivery_park_threshold=3,
            delivery_probe_base_seconds=1.0,
            delivery_probe_cap_seconds=1.5,
        ),
        name="t",
    )
    try:
        created = await add_destination(runtime, destination)
        await destination.down()
        await change(runtime, [snapshot(i) for i in range(1, 6)])
        # Three failures in a row (retried with backoff, one message at a time) park it. One
        # round may see more than one of them: on a loaded machine the short retry backoff can
        # be over before the round looks again.
        deadline = time.monotonic() + 30
        while True:
            assert await service.deliver(runtime, created.id, budget_s=1.0) == 0
            state = await _state(runtime, created.id)
            if state["state"] == "parked":
                break
            assert state["state"] in ("open", "suspect")
            assert time.monotonic() < deadline, f"not parked in time: {state}"
            await asyncio.sleep(0.02)
        assert (state["state"], state["failures"]) == ("parked", 3)
        attempts = await _attempts(runtime, created.id)
        assert len(attempts) == 3
        assert {a["outcome"] for a in attempts} == {"failed"}
        assert len({a["message_id"] for a in attempts}) == 1, "the same oldest message each time"

        # Parked: a round before the probe is due sends nothing; when due, exactly one.
        next_at = (await _state(runtime, created.id))["next_attempt_at"]
        assert isinstance(next_at, datetime)
        # (Checked only with time to spare; the pure rule itself: tests/delivery/test_policy.py.)
        if (next_at - datetime.now(UTC)).total_seconds() > 0.3:
            assert await service.deliver(runtime, created.id) == 0
            assert len(await _attempts(runtime, created.id)) == 3
        probes_at: list[datetime] = []
        while len(probes_at) < 3:
            state = await _state(runtime, created.id)
            next_at = state["next_attempt_at"]
            assert isinstance(next_at, datetime)
            await asyncio.sleep(max(0.0, (next_at - datetime.now(UTC)).total_seconds()) + 0.01)
            before = len(await _attempts(runtime, created.id))
            await service.deliver(runtime, created.id)
            after = await _attempts(runtime, created.id)
            assert len(after) == before + 1, "one probe per interval, never more"
            probes_at.append(after[-1]["at"])  # type: ignore[arg-type]
        rules = policy.Rules.of(runtime.settings)
        for attempt, (a, b) in enumerate(itertools.pairwise(probes_at), start=1):
            assert (b - a).total_seconds() >= policy.probe_floor_of(attempt, rules) - 0.05

        # Back up: the next probe goes through, and everything held follows, in order.
        await destination.up()
        await _deliver_until(runtime, created.id, lambda: len(destination.delivered()) >= 5)
        got = destination.delivered()
        assert [d.data["resource_id"] for d in got] == [1, 2, 3, 4, 5]
        assert [d.data["change_seq"] for d in got] == sorted(d.data["change_seq"] for d in got)
        assert destination.unverified == []
        state = await _state(runtime, created.id)
        assert (state["state"], state["delivered"]) == ("open", 5)
    finally:
        await runtime.close()


async def test_a_refused_message_becomes_a_dead_letter_and_is_replayed_one_by_one_and_in_bulk(
    drt: Runtime, destination: Destination
) -> None:
    created = await add_destination(drt, destination)
    destination.script.extend([422, 200, 410])
    await change(drt, [snapshot(1)])
    await change(drt, [snapshot(2)])
    await change(drt, [snapshot(3)])
    await service.deliver(drt, created.id)
    assert [d.status for d in destination.deliveries] == [422, 200, 410]
    state = await _state(drt, created.id)
    assert (state["state"], state["dead"], state["delivered"]) == ("open", 2, 1)
    async with drt.sessions() as session:
        page = await destinations.dead_letters(
            session, created.id, pending_only=True, after=None, limit=10
        )
    assert [x.body["data"]["resource_id"] for x in page.items] == [1, 3]
    assert page.items[0].status == 422

    async with drt.sessions() as session, session.begin():
        one = await destinations.replay_letter(session, created.id, page.items[0].id, actor="t")
    assert one is not None
    assert one.replay_requested_at is not None
    await service.deliver(drt, created.id)
    replayed = destination.deliveries[-1]
    assert (replayed.id, replayed.data["resource_id"]) == (page.items[0].message_id, 1)

    async with drt.sessions() as session, session.begin():
        with pytest.raises(destinations.LetterSettled):
            await destinations.replay_letter(session, created.id, page.items[0].id, actor="t")
        assert (
            await destinations.replay_letters(
                session, created.id, event_type=None, max_letters=None, actor="t"
            )
            == 1
        )
    await service.deliver(drt, created.id)
    assert destination.deliveries[-1].data["resource_id"] == 3
    async with drt.sessions() as session:
        left = await destinations.dead_letters(
            session, created.id, pending_only=True, after=None, limit=10
        )
        actions = (await session.execute(text("SELECT action FROM admin_actions"))).scalars()
        assert {"dead_letter_replay", "dead_letters_replay"} <= set(actions)
    assert left.items == []
    assert [a["replay"] for a in await _attempts(drt, created.id)][-2:] == [True, True]


async def test_a_name_that_now_resolves_to_a_metadata_address_is_refused_at_delivery(
    drt: Runtime, destination: Destination
) -> None:
    """DNS rebinding: accepted when set, the name points at 169.254.169.254 by delivery time.
    Nothing is sent (the client's transport would fail the test if asked to connect)."""
    created = await add_destination(drt, destination)
    async with drt.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE destinations SET url = 'https://hooks.example.net/in' WHERE id = :id"),
            {"id": created.id},
        )
    await change(drt, [snapshot(1)])

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a connection was attempted to {request.url}")

    async def rebound(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    production = make_settings(
        drt.settings.database_url,
        app_env="production",
        delivery_park_threshold=3,
        delivery_linger_seconds=0.0,
    )
    runtime = open_runtime(production, name="t")
    await runtime.outbound.aclose()
    runtime.outbound = httpx.AsyncClient(transport=httpx.MockTransport(never))
    try:
        await service.deliver(runtime, created.id, resolver=rebound)
    finally:
        await runtime.close()
    attempts = await _attempts(drt, created.id)
    assert attempts
    for attempt in attempts:
        assert attempt["outcome"] == "refused"
        assert "169.254.169.254 is a cloud metadata address" in str(attempt["error"])
    state = await _state(drt, created.id)
    assert state["state"] in ("suspect", "parked")
    assert destination.requests == 0


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    drt: Runtime, destination: Destination
) -> None:
    created = await add_destination(drt, destination)
    async with drt.sessions() as session, session.begin():
        rotated = await destinations.rotate_secret(
            session, created.id, vault=drt.vault, overlap_seconds=3600, actor="t"
        )
    assert rotated is not None
    destination.secrets.append(rotated.secret)
    await change(drt, [snapshot(1)])
    await service.deliver(drt, created.id)
    [first] = destination.delivered()
    assert len(first.signatures) == 2
    for secret in (created.secret, rotated.secret):
        Webhook(secret).verify(orjson.dumps(first.body), _headers(first))
    async with drt.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE destinations SET previous_secret_expires_at = now() WHERE id = :id"),
            {"id": created.id},
        )
    await change(drt, [snapshot(2)])
    await service.deliver(drt, created.id)
    second = destination.delivered()[1]
    assert len(second.signatures) == 1
    Webhook(rotated.secret).verify(orjson.dumps(second.body), _headers(second))
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret).verify(orjson.dumps(second.body), _headers(second))


def _headers(delivery: Delivery) -> dict[str, str]:
    return {
        "webhook-id": delivery.id,
        "webhook-timestamp": str(delivery.timestamp),
        "webhook-signature": " ".join(delivery.signatures),
    }


async def test_filters_and_the_object_setting_shape_what_a_destination_receives(
    drt: Runtime,
) -> None:
    async with Destination() as everything, Destination() as narrow:
        wide = await add_destination(drt, everything, include_object=True)
        few = await add_destination(
            drt, narrow, company_ids=[32], resource_names=["RFIs"],
            event_types=["resource.deleted"],
        )  # fmt: skip
        await change(drt, [snapshot(1, company_id=31), snapshot(2, company_id=32)])
        await change(drt, [snapshot(3, company_id=32, resource_name="Submittals")])
        await delete(drt, 2, company_id=32)
        await delete(drt, 1, company_id=31)
        assert await service.deliver(drt, wide.id) == 3
        await service.deliver(drt, few.id)
        [(kind, data)] = [(d.type, d.data) for d in narrow.delivered()]
        assert (kind, data["company_id"], data["resource_id"]) == ("resource.deleted", 32, 2)
        assert "object" not in data
        objects = {d.data["resource_id"]: d.data["object"] for d in everything.delivered()}
        assert objects[3]["id"] == 3
        # Everything it did not want was passed over: nothing is held for it.
        assert not await service.pending(drt, few.id)


async def test_redirects_are_not_followed_and_answers_are_read_only_up_to_the_bound(
    drt: Runtime,
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Destination() as placeholder:
        created = await add_destination(drt, placeholder)
        async with drt.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE destinations SET url = :u WHERE id = :id"),
                {"u": f"http://127.0.0.1:{port}/in", "id": created.id},
            )
        await change(drt, [snapshot(1)])
        await service.deliver(drt, created.id)
    # (A retry may already be due before the round ends: every attempt is the same refusal.)
    attempts = await _attempts(drt, created.id)
    assert attempts
    for attempt in attempts:
        assert (attempt["outcome"], attempt["status"]) == ("failed", 302)
        assert "not followed" in str(attempt["error"])

    big = b"x" * 100_000
    answer = await _answer_of(drt, b"HTTP/1.1 400 Bad\r\ncontent-length: 100000\r\n\r\n" + big)
    assert answer.outcome == "dead"
    assert answer.error is not None
    assert len(answer.error) == drt.settings.delivery_max_answer_bytes


async def _answer_of(runtime: Runtime, raw: bytes) -> sender.Answer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        return await sender.send(
            runtime.outbound,
            f"http://127.0.0.1:{port}/in",
            message_id="msg_r1",
            body=b"{}",
            secrets_in_use=[signing.new_secret()],
            rules=DEV_RULES,
            timeout_s=5.0,
            max_answer_bytes=runtime.settings.delivery_max_answer_bytes,
        )


async def test_outbox_facts_are_delivered_with_their_own_types(
    drt: Runtime, destination: Destination
) -> None:
    created = await add_destination(drt, destination, event_types=["hook.*", "resync.finished"])
    async with drt.sessions() as session, session.begin():
        await outbox.append(session, messages.HOOK_DISABLED, company_id=31, data={"hook_id": 7})
        await outbox.append(
            session, messages.RESYNC_FINISHED, company_id=31, data={"run_id": 3, "status": "done"}
        )
    await change(drt, [snapshot(1)])  # not wanted
    await service.deliver(drt, created.id)
    got = destination.delivered()
    assert [(d.type, d.data["company_id"]) for d in got] == [
        ("hook.disabled", 31),
        ("resync.finished", 31),
    ]
    assert got[0].data["hook_id"] == 7
    assert got[0].id.startswith("msg_o")
