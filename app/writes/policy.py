"""Write jobs, the rules: what may be submitted, how jobs become Procore calls, and what each
answer means for each job. Pure: no I/O (app.writes.service and runner apply it).

- A job names a registered resource (`app.registry.resources`, its `writes`) and an operation;
  never a path. `check` refuses what cannot be sent, naming the field.
- A type with a sync action is created and updated through it, keyed by `origin_id`
  (`tutorials/using_sync_actions.md`): a create needs an `origin_id`, and sending it again
  after a lost answer updates what the first attempt created. Consecutive jobs of one lane
  for the same sync endpoint share one call, up to its batch size, never two items with the
  same key in one call (their order would be lost).
- Other types are written one call each. A plain create's answer may be lost after Procore
  acted on it: the job then keeps `sent_at`, and its next run looks it up (the registry's
  `lookup`) before anything is sent again, or, when Procore cannot be asked, stops
  `in_doubt` for an operator. Updates are idempotent (the same fields again); a delete
  that finds nothing after a lost answer has already happened.
- Answers (classified by `app.procore.answers`): 2xx → the sync item's entity or per-item
  `errors`; 401 and 403 "not connected" → retried, never given up (the gates park the scope
  and release it); other 403 → failed (a permission to write is missing; fed to the gates
  too); 404, 400, 422 → failed with Procore's reasons, not retried; 409 → retried a few times
  (Procore's direct costs answer 409 to concurrent changes); 429 → retried at the reset, no
  attempt spent; 5xx and no answer → retried with backoff, then failed.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from app.events.policy import RetryPolicy
from app.models import JobStatus
from app.procore import backoff
from app.procore.answers import Outcome, OutcomeKind, message_of
from app.registry import resources
from app.registry.ids import id_of
from app.registry.resources import ResourceType, WriteCall, WriteKind

KEY_MAX_CHARS = 255
# Keys (idempotency keys, origin ids) are text without control characters (NUL included,
# which Postgres refuses); the API publishes the same pattern.
KEY_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class Refused(ValueError):
    """A submission that cannot be sent: `field` names what is wrong (`payload.name`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Submission:
    """A job as submitted, checked."""

    company_id: int
    project_id: int | None
    resource_name: str
    operation: WriteKind
    resource_id: int | None
    origin_id: str | None
    payload: dict[str, Any] | None
    idempotency_key: str

    def fingerprint(self) -> str:
        """The request without its key: the same key with another request is a mistake."""
        request = {
            "company_id": self.company_id,
            "project_id": self.project_id,
            "resource_name": self.resource_name,
            "operation": self.operation.value,
            "resource_id": self.resource_id,
            "origin_id": self.origin_id,
            "payload": self.payload,
        }
        return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check(
    *,
    company_id: int,
    project_id: int | None,
    resource_name: str,
    operation: WriteKind,
    resource_id: int | None,
    origin_id: str | None,
    payload: Any,
    idempotency_key: str,
    payload_max_bytes: int,
) -> Submission:
    """The submission, or Refused naming the first field that makes it unsendable."""
    kind = resources.get(resource_name)
    if kind is None:
        raise Refused("resource_name", f"unknown resource {resource_name!r}")
    writes = kind.writes
    if writes is None:
        raise Refused(
            "resource_name",
            f"{resource_name} is not written back (writable: {', '.join(resources.WRITABLE)})",
        )
    _check_key("idempotency_key", idempotency_key)
    if origin_id is not None:
        _check_key("origin_id", origin_id)
    if kind.company_level and project_id is not None:
        raise Refused("project_id", f"{resource_name} are company-level: give no project_id")
    if not kind.company_level and project_id is None:
        raise Refused("project_id", f"required: {resource_name} live in a project")
    fields = _check_payload(kind, operation, payload, payload_max_bytes)
    call = call_for(kind, operation)
    if call is None:
        raise Refused("operation", f"{resource_name} cannot be {_past(operation)} in Procore")
    synced = call is writes.sync
    if origin_id is not None and writes.sync is None:
        raise Refused(
            "origin_id", f"{resource_name} have no sync action: Procore keeps no origin_id"
        )
    if operation is WriteKind.DELETE:
        if resource_id is None:
            raise Refused("resource_id", "required: the id of the resource to delete")
        if fields:
            raise Refused("payload", "a delete takes none")
        return Submission(
            company_id, project_id, resource_name, operation, resource_id, origin_id, None,
            idempotency_key,
        )  # fmt: skip
    if operation is WriteKind.CREATE and resource_id is not None:
        raise Refused("resource_id", "a create names no resource: Procore gives the id")
    if synced and origin_id is None and (operation is not WriteKind.UPDATE or resource_id is None):
        raise Refused(
            "origin_id",
            f"required: {resource_name} are written through their sync action, keyed by "
            "origin_id (a create without one could not be sent again safely)",
        )
    if not synced:
        if operation is WriteKind.UPDATE and resource_id is None:
            raise Refused("resource_id", "required: the id of the resource to update")
        needed = writes.create_requires if operation is WriteKind.CREATE else writes.update_requires
        for name in needed:
            if fields.get(name) in (None, "", [], {}):
                raise Refused(f"payload.{name}", f"required to {operation.value} {resource_name}")
    return Submission(
        company_id, project_id, resource_name, operation, resource_id, origin_id, fields,
        idempotency_key,
    )  # fmt: skip


def _check_key(name: str, value: str) -> None:
    if not value or len(value) > KEY_MAX_CHARS:
        raise Refused(name, f"1 to {KEY_MAX_CHARS} characters")
    if re.fullmatch(KEY_PATTERN, value) is None:
        raise Refused(name, "no control characters")


def _check_payload(
    kind: ResourceType, operation: WriteKind, payload: Any, max_bytes: int
) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise Refused("payload", "must be an object of the resource's fields")
    try:
        encoded = orjson.dumps(payload)
    except (TypeError, orjson.JSONEncodeError) as exc:
        # Lone surrogates, integers beyond 64 bits: nothing Procore could be sent.
        raise Refused("payload", f"cannot be sent as JSON: {exc}") from exc
    if len(encoded) > max_bytes:
        raise Refused("payload", f"{len(encoded)} bytes; at most {max_bytes}")
    if b"\\u0000" in encoded:
        raise Refused("payload", "holds a NUL character, which cannot be stored or sent")
    if not _finite(payload):
        raise Refused("payload", "holds NaN or Infinity, which JSON cannot carry")
    for reserved, instead in (("id", "resource_id"), ("origin_id", "origin_id")):
        if reserved in payload:
            raise Refused(f"payload.{reserved}", f"give it as {instead}, beside the payload")
    call = call_for(kind, operation)
    wrapper = call.wrapper if call is not None else None
    if wrapper is not None and list(payload) == [wrapper] and isinstance(payload[wrapper], dict):
        raise Refused("payload", f"give the fields themselves, not wrapped in {wrapper!r}")
    return payload


def _finite(value: Any) -> bool:
    """No NaN or Infinity anywhere (a lenient parser lets them through; JSON has none)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _past(operation: WriteKind) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted", "sync": "synced"}[
        operation.value
    ]


def call_for(kind: ResourceType, operation: WriteKind) -> WriteCall | None:
    """The call a job of this operation makes: creates and updates of a type with a sync
    action go through it."""
    writes = kind.writes
    if writes is None:
        return None
    if operation is WriteKind.DELETE:
        return writes.delete
    if writes.sync is not None:
        return writes.sync
    if operation is WriteKind.SYNC:
        return None
    return writes.call(operation)


# --- Planning: a lane's claimed jobs → calls ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as the runner reads it."""

    id: int
    claims: int
    attempts: int
    company_id: int
    project_id: int | None
    resource_name: str
    operation: WriteKind
    resource_id: int | None
    origin_id: str | None
    payload: dict[str, Any] | None
    # A plain call was sent and its answer never written: it may have been acted on.
    sent_at: datetime | None
    submitted_at: datetime

    @property
    def kind(self) -> ResourceType:
        return resources.REGISTRY[self.resource_name]

    @property
    def call(self) -> WriteCall:
        found = call_for(self.kind, self.operation)
        assert found is not None, "checked at submission"
        return found

    @property
    def synced(self) -> bool:
        writes = self.kind.writes
        return writes is not None and self.call is writes.sync

    @property
    def in_doubt(self) -> bool:
        """A plain create that may have happened already."""
        return self.sent_at is not None and self.operation is WriteKind.CREATE

    def sync_item(self) -> dict[str, Any]:
        item = dict(self.payload or {})
        if self.resource_id is not None:
            item["id"] = self.resource_id
        if self.origin_id is not None:
            item["origin_id"] = self.origin_id
        return item

    def key(self) -> tuple[str, object]:
        """What identifies the item in a sync answer: Procore's id if known, else ours."""
        if self.resource_id is not None:
            return ("id", self.resource_id)
        return ("origin_id", self.origin_id)


@dataclass(slots=True)
class Call:
    """One Procore call serving one job, or (a sync call) many."""

    call: WriteCall
    synced: bool
    jobs: list[Job] = field(default_factory=list)

    @property
    def first(self) -> Job:
        return self.jobs[0]


def plan(jobs: Sequence[Job], *, sync_batch: int) -> list[Call]:
    """The calls for a lane's jobs, in submission order: consecutive sync jobs of one
    endpoint (resource and project) share a call; an item key seen twice starts a new one."""
    calls: list[Call] = []
    keys: set[tuple[str, object]] = set()
    for job in jobs:
        last = calls[-1] if calls else None
        if (
            job.synced
            and last is not None
            and last.synced
            and last.first.resource_name == job.resource_name
            and last.first.project_id == job.project_id
            and len(last.jobs) < min(sync_batch, resources.MAX_SYNC_ITEMS)
            and job.key() not in keys
        ):
            last.jobs.append(job)
            keys.add(job.key())
            continue
        calls.append(Call(job.call, job.synced, [job]))
        keys = {job.key()}
    return calls


# --- Answers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """What a sync answer says about one job's item."""

    entity: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def reasons(self) -> str:
        if self.error is None:
            return ""
        found = self.error.get("errors", self.error)
        return message_of(orjson.dumps(found).decode()) or "refused by Procore"


def read_sync(jobs: Sequence[Job], body: Any) -> dict[int, Item] | None:
    """Each job's entity or error in a sync answer (`{"entities": [...], "errors": [...]}`);
    None when the body is not a sync answer. A job the answer does not mention is absent."""
    if not isinstance(body, dict):
        return None
    entities, errors = body.get("entities"), body.get("errors")
    if not isinstance(entities, list) or not isinstance(errors, list):
        return None
    by_key: dict[tuple[str, object], Item] = {}
    for entity in _objects(entities):
        for key in _keys(entity):
            by_key.setdefault(key, Item(entity=entity))
    for error in _objects(errors):
        for key in _keys(error):
            by_key.setdefault(key, Item(error=error))
    found: dict[int, Item] = {}
    for job in jobs:
        item = by_key.get(job.key())
        if item is None and job.origin_id is not None:
            item = by_key.get(("origin_id", job.origin_id))
        if item is not None:
            found[job.id] = item
    return found


def _objects(values: Iterable[Any]) -> Iterable[dict[str, Any]]:
    return (v for v in values if isinstance(v, dict))


def _keys(item: Mapping[str, Any]) -> list[tuple[str, object]]:
    keys: list[tuple[str, object]] = []
    rid = id_of(item.get("id"))
    if rid is not None:
        keys.append(("id", rid))
    origin = item.get("origin_id")
    if isinstance(origin, str | int) and not isinstance(origin, bool):
        keys.append(("origin_id", str(origin)))
    return keys


def matches(items: Any, lookup: resources.Lookup, payload: Mapping[str, Any]) -> list[Any]:
    """The listed records whose lookup field holds the payload's value."""
    wanted = payload.get(lookup.field)
    if not isinstance(items, list) or wanted is None:
        return []
    return [i for i in items if isinstance(i, dict) and str(i.get(lookup.field)) == str(wanted)]


def can_look_up(job: Job) -> bool:
    lookup = job.kind.writes.lookup if job.kind.writes is not None else None
    return lookup is not None and (job.payload or {}).get(lookup.field) not in (None, "")


# --- Decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """A job's next state after an answer."""

    status: JobStatus
    attempts: int
    # Seconds until the next run; None for a state that waits on nothing (final, in doubt).
    delay: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    # Procore's answer for the job (stored; the resource or the per-item error).
    answer: dict[str, Any] | None = None
    resource_id: int | None = None
    # The resource as Procore answered it (written to the mirror).
    entity: dict[str, Any] | None = None
    deleted: bool = False
    # The call may have been acted on: the next run looks before sending again.
    keep_sent: bool = False

    @property
    def final(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


# Answers that hold the lane: the job waits and the jobs behind it are not tried before it.
def holds_lane(decision: Decision) -> bool:
    return decision.status is JobStatus.RETRYING


_CONFLICT_ATTEMPTS = 3


def decide(
    job: Job,
    outcome: Outcome,
    *,
    body: Any,
    item: Item | None,
    policy: RetryPolicy,
    lost_answer_delay: float,
    now: float,
    rng: random.Random,
) -> Decision:
    """The job's next state after `outcome` (and, for a sync call answered 200, its `item`)."""
    kind, status, attempts = outcome.kind, outcome.status, job.attempts
    error = outcome.message or None
    if kind is OutcomeKind.OK:
        return _answered(job, status, body, item, policy, now, rng)
    if kind is OutcomeKind.RATE_LIMITED:
        delay = backoff.rate_limit_wait(
            outcome, now=now, jitter=policy.rate_limit_jitter_seconds, rng=rng
        )
        return Decision(JobStatus.RETRYING, attempts, delay, status, error)
    answer = _error_body(body)
    if kind is OutcomeKind.NOT_FOUND:
        if job.operation is WriteKind.DELETE and (job.sent_at is not None or attempts > 0):
            # A delete sent before (its answer lost) that now finds nothing: it happened.
            return Decision(
                JobStatus.SUCCEEDED, attempts, None, status, None, None, job.resource_id,
                deleted=True,
            )  # fmt: skip
        return Decision(JobStatus.FAILED, attempts, None, status, error or "not found", answer)
    if kind is OutcomeKind.FORBIDDEN:
        why = f"Procore refused the write: {error or 'forbidden'} (the app's permission to "
        why += "write this tool is missing; fix it and replay)"
        return Decision(JobStatus.FAILED, attempts, None, status, why, answer)
    if kind is OutcomeKind.REJECTED:
        if status == 409 and attempts + 1 < _CONFLICT_ATTEMPTS:
            return _again(job, attempts + 1, status, error, policy, rng)
        return Decision(JobStatus.FAILED, attempts, None, status, error, answer)
    if outcome.is_gate_signal:
        # Not installed, or a token refused after renewal: never given up; the gates park
        # the scope after a few and release it when it answers again.
        spent = min(attempts + 1, policy.max_attempts)
        return _again(job, spent, status, error, policy, rng)
    # Transient: a 5xx, a timeout, no answer at all.
    spent = attempts + 1
    if job.operation is WriteKind.CREATE and not job.synced:
        delay = max(lost_answer_delay, backoff.full_jitter(spent, policy.base_seconds,
                                                           policy.cap_seconds, rng))  # fmt: skip
        return Decision(JobStatus.RETRYING, spent, delay, status, error, keep_sent=True)
    if spent >= policy.max_attempts:
        return Decision(JobStatus.FAILED, spent, None, status, error, answer)
    return _again(job, spent, status, error, policy, rng, retry_after=outcome.retry_after)


def _again(
    job: Job,
    spent: int,
    status: int | None,
    error: str | None,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    retry_after: float | None = None,
) -> Decision:
    delay = backoff.full_jitter(spent, policy.base_seconds, policy.cap_seconds, rng)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return Decision(JobStatus.RETRYING, spent, delay, status, error)


def _answered(
    job: Job,
    status: int | None,
    body: Any,
    item: Item | None,
    policy: RetryPolicy,
    now: float,
    rng: random.Random,
) -> Decision:
    attempts = job.attempts
    if job.operation is WriteKind.DELETE:
        return Decision(
            JobStatus.SUCCEEDED, attempts, None, status, None, None, job.resource_id, deleted=True
        )
    if not job.synced:
        entity = body if isinstance(body, dict) else None
        rid = id_of(entity.get("id")) if entity is not None else None
        return Decision(
            JobStatus.SUCCEEDED, attempts, None, status, None, entity, rid or job.resource_id,
            entity if rid is not None else None,
        )  # fmt: skip
    if item is None:
        # The answer does not mention the item: sending it again is safe (the sync action is
        # keyed), a few times.
        spent = attempts + 1
        why = "Procore's sync answer did not mention this item"
        if spent >= policy.max_attempts:
            return Decision(JobStatus.FAILED, spent, None, status, why)
        return _again(job, spent, status, why, policy, rng)
    if item.error is not None:
        return Decision(JobStatus.FAILED, attempts, None, status, item.reasons, item.error)
    entity = item.entity
    rid = id_of(entity.get("id")) if entity is not None else None
    return Decision(JobStatus.SUCCEEDED, attempts, None, status, None, entity, rid, entity)


def _error_body(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        return body
    if body is None:
        return None
    return {"body": body}


def parked(job: Job) -> Decision:
    # A create in doubt stays in doubt while it waits: released, it is looked up first.
    return Decision(JobStatus.PARKED, job.attempts, keep_sent=True)


def in_doubt(job: Job, why: str) -> Decision:
    return Decision(JobStatus.IN_DOUBT, job.attempts, None, None, why, keep_sent=True)


def found_by_lookup(job: Job, entity: dict[str, Any], status: int | None) -> Decision:
    return Decision(
        JobStatus.SUCCEEDED, job.attempts, None, status, None, entity, id_of(entity.get("id")),
        entity,
    )  # fmt: skip
