"""The write jobs' rules, pure: planning a lane into calls, reading sync answers, and what
each answer means for a job (app.writes.policy)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.events.policy import RetryPolicy
from app.models import JobStatus
from app.procore.answers import Outcome, OutcomeKind, classify
from app.registry.resources import MAX_SYNC_ITEMS, WriteKind
from app.writes import policy
from app.writes.policy import Job

RETRY = RetryPolicy(
    base_seconds=1.0, cap_seconds=60.0, max_attempts=5, rate_limit_jitter_seconds=0.1
)
NOW = datetime(2026, 12, 10, tzinfo=UTC)


def make(
    n: int,
    resource: str = "Company Vendors",
    operation: WriteKind = WriteKind.CREATE,
    *,
    project: int | None = None,
    origin: str | None = "o",
    rid: int | None = None,
    attempts: int = 0,
    sent: bool = False,
) -> Job:
    return Job(
        id=n, claims=1, attempts=attempts, company_id=31, project_id=project,
        resource_name=resource, operation=operation, resource_id=rid,
        origin_id=None if origin is None else f"{origin}-{n}", payload={"name": f"n{n}"},
        sent_at=NOW if sent else None, submitted_at=NOW,
    )  # fmt: skip


def decide(
    job: Job, outcome: Outcome, body: object = None, item: policy.Item | None = None
) -> policy.Decision:
    return policy.decide(
        job, outcome, body=body, item=item, policy=RETRY, lost_answer_delay=20.0, now=0.0,
        rng=random.Random(1),
    )  # fmt: skip


# --- planning -------------------------------------------------------------------------------

KINDS = st.sampled_from(
    [
        ("Company Vendors", None, WriteKind.CREATE),
        ("Cost Codes", 900, WriteKind.SYNC),
        ("Cost Codes", 901, WriteKind.SYNC),
        ("RFIs", 900, WriteKind.CREATE),
        ("Direct Costs", 900, WriteKind.DELETE),
    ]
)


@given(
    st.lists(st.tuples(KINDS, st.integers(0, 5)), max_size=60),
    st.integers(1, 10),
)
def test_a_plan_keeps_the_lanes_order_and_never_mixes_what_one_call_cannot_carry(
    specs: list[tuple[tuple[str, int | None, WriteKind], int]], batch: int
) -> None:
    jobs = []
    for n, ((resource, project, operation), key) in enumerate(specs):
        plain = resource == "RFIs" or operation is WriteKind.DELETE
        jobs.append(
            Job(
                id=n, claims=1, attempts=0, company_id=31, project_id=project,
                resource_name=resource, operation=operation,
                resource_id=9 if operation is WriteKind.DELETE else None,
                origin_id=None if plain else f"k{key}", payload=None, sent_at=None,
                submitted_at=NOW,
            )
        )  # fmt: skip
    calls = policy.plan(jobs, sync_batch=batch)
    assert [j.id for c in calls for j in c.jobs] == [j.id for j in jobs], "submission order"
    for call in calls:
        assert len(call.jobs) <= min(batch, MAX_SYNC_ITEMS)
        if not call.synced:
            assert len(call.jobs) == 1
        assert {(j.resource_name, j.project_id) for j in call.jobs} == {
            (call.first.resource_name, call.first.project_id)
        }
        keys = [j.key() for j in call.jobs]
        assert len(keys) == len(set(keys)), "one item per key in a call"


def test_consecutive_sync_jobs_share_calls_up_to_the_batch() -> None:
    jobs = [make(n) for n in range(7)]
    calls = policy.plan(jobs, sync_batch=3)
    assert [[j.id for j in c.jobs] for c in calls] == [[0, 1, 2], [3, 4, 5], [6]]
    assert all(c.synced for c in calls)


def test_the_same_key_twice_starts_a_new_call() -> None:
    same = [replace(make(n), origin_id="same") for n in (1, 2)]
    calls = policy.plan(same, sync_batch=100)
    assert [[j.id for j in c.jobs] for c in calls] == [[1], [2]]


# --- sync answers ---------------------------------------------------------------------------


def test_a_sync_answer_is_read_back_per_item_by_origin_id_or_id() -> None:
    """`tutorials/using_sync_actions.md`: entities are the Show views; each error echoes the
    attributes the caller supplied plus `errors`."""
    jobs = [make(1), make(2), make(3, origin=None, rid=77, operation=WriteKind.UPDATE), make(4)]
    entity = {"id": 500, "origin_id": "o-1", "name": "n1"}
    body = {
        "entities": [entity, {"id": 77, "name": "n3"}],
        "errors": [{"origin_id": "o-2", "name": "n2", "errors": {"name": ["can't be blank"]}}],
    }
    read = policy.read_sync(jobs, body)
    assert read is not None
    assert read[1].entity == entity
    assert read[2].reasons == "name: can't be blank"
    assert read[3].entity == {"id": 77, "name": "n3"}
    assert 4 not in read, "an item the answer does not mention"
    assert policy.read_sync(jobs, {"entities": []}) is None
    assert policy.read_sync(jobs, ["not", "a", "sync", "answer"]) is None


# --- decisions ------------------------------------------------------------------------------


def test_a_sync_item_in_errors_fails_with_procores_reasons_and_is_not_retried() -> None:
    item = policy.Item(error={"origin_id": "o-1", "errors": {"name": ["can't be blank"]}})
    decided = decide(make(1), Outcome(OutcomeKind.OK, 200), item=item)
    assert decided.status is JobStatus.FAILED
    assert decided.last_error == "name: can't be blank"
    assert decided.answer == item.error
    assert decided.final


def test_a_sync_item_found_succeeds_with_the_resource() -> None:
    entity = {"id": 500, "origin_id": "o-1"}
    decided = decide(make(1), Outcome(OutcomeKind.OK, 200), item=policy.Item(entity=entity))
    assert (decided.status, decided.resource_id, decided.entity) == (
        JobStatus.SUCCEEDED, 500, entity,
    )  # fmt: skip


def test_an_item_the_answer_forgot_is_sent_again_a_few_times() -> None:
    again = decide(make(1), Outcome(OutcomeKind.OK, 200), item=None)
    last = decide(make(1, attempts=4), Outcome(OutcomeKind.OK, 200), item=None)
    assert again.status is JobStatus.RETRYING
    assert last.status is JobStatus.FAILED


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, b'{"errors": ["App is not connected to this company."]}', JobStatus.RETRYING),
        (401, b'{"errors": "The access token is invalid"}', JobStatus.RETRYING),
        (403, b'{"errors": ["You do not have permission"]}', JobStatus.FAILED),
        (404, b'{"errors": ["Record not found."]}', JobStatus.FAILED),
        (422, b'{"errors": {"name": ["is too long"]}}', JobStatus.FAILED),
        (400, b'{"errors": ["param is missing"]}', JobStatus.FAILED),
        (429, b"You have surpassed the max number of requests", JobStatus.RETRYING),
        (500, b'{"errors": ["Internal Server Error"]}', JobStatus.RETRYING),
        (409, b'{"errors": ["conflict"]}', JobStatus.RETRYING),
    ],
)
def test_each_answer_class_for_a_sync_write(status: int, body: bytes, expected: JobStatus) -> None:
    """FACTS.md §6: 401/403 "not connected" are the gates' (never given up); other 4xx are
    our request's (failed with the body); 429 waits; 5xx retries."""
    decided = decide(make(1, attempts=0), classify(status, {}, body), body={"raw": True})
    assert decided.status is expected
    if expected is JobStatus.FAILED:
        assert decided.last_status == status
        assert decided.last_error


@given(st.integers(0, 20))
def test_refusals_by_the_gates_never_give_a_job_up(attempts: int) -> None:
    outcome = classify(403, {}, b'{"errors": ["App is not connected to this company."]}')
    decided = decide(make(1, attempts=attempts), outcome)
    assert decided.status is JobStatus.RETRYING
    assert decided.attempts <= RETRY.max_attempts


@given(st.integers(0, 20), st.sampled_from([None, 500, 502, 504]))
def test_a_plain_create_without_an_answer_is_never_sent_again_blindly(
    attempts: int, status: int | None
) -> None:
    """It keeps `sent_at` (the next run looks it up first) and waits at least the lost-answer
    delay, whatever the attempts."""
    outcome = Outcome(OutcomeKind.TRANSIENT, status, "no answer")
    decided = decide(make(1, "RFIs", project=900, origin=None, attempts=attempts), outcome)
    assert decided.keep_sent
    assert decided.status is JobStatus.RETRYING
    assert decided.delay is not None
    assert decided.delay >= 20.0


def test_a_lost_answer_to_a_sync_or_an_update_is_simply_sent_again() -> None:
    outcome = Outcome(OutcomeKind.TRANSIENT, None, "timeout")
    synced = decide(make(1), outcome)
    update = decide(make(2, "RFIs", WriteKind.UPDATE, project=900, origin=None, rid=5), outcome)
    for decided in (synced, update):
        assert decided.status is JobStatus.RETRYING
        assert not decided.keep_sent
    assert decide(make(1, attempts=4), outcome).status is JobStatus.FAILED


def test_a_rate_limit_spends_no_attempt() -> None:
    outcome = Outcome(OutcomeKind.RATE_LIMITED, 429, "slow down", retry_after=3.0)
    decided = decide(make(1, attempts=2), outcome)
    assert (decided.status, decided.attempts) == (JobStatus.RETRYING, 2)
    assert decided.delay is not None
    assert decided.delay >= 3.0


def test_a_delete_that_finds_nothing_after_a_lost_answer_has_happened() -> None:
    first = make(1, "Direct Costs", WriteKind.DELETE, project=900, origin=None, rid=9)
    resent = make(1, "Direct Costs", WriteKind.DELETE, project=900, origin=None, rid=9, sent=True)
    gone = Outcome(OutcomeKind.NOT_FOUND, 404, "Record not found.")
    assert decide(first, gone).status is JobStatus.FAILED
    decided = decide(resent, gone)
    assert (decided.status, decided.deleted, decided.resource_id) == (JobStatus.SUCCEEDED, True, 9)


def test_a_look_up_matches_on_the_payloads_key() -> None:
    job = replace(make(1, "RFIs", project=900, origin=None), payload={"number": "A-1"})
    writes = job.kind.writes
    assert writes is not None
    assert writes.lookup is not None
    assert policy.can_look_up(job)
    listed = [{"id": 1, "number": "A-1"}, {"id": 2, "number": "A-10"}, "junk"]
    assert policy.matches(listed, writes.lookup, job.payload or {}) == [listed[0]]
    assert policy.matches({"not": "a list"}, writes.lookup, job.payload or {}) == []
    unnumbered = replace(job, payload={})
    assert not policy.can_look_up(unnumbered)


def test_a_create_in_doubt_stays_in_doubt_while_parked() -> None:
    assert policy.parked(make(1, "RFIs", project=900, origin=None, sent=True)).keep_sent
