"""Every Prometheus metric of the service, and the small typed functions call sites use.

Call sites never touch a metric object: they call `metrics.webhook_rejected("auth")`,
`metrics.procore_call(403, "fetch")`, ... so the names, labels and label values live here
only and stay bounded (no ids in labels).

Two kinds of numbers:
- Counters and the lag histogram are counted where things happen (api: the receiver;
  worker: jobs, calls, probes, token renewals). Each process exposes its own: the deployment
  runs one api process per container (docker-compose.yml, deploy/kubernetes). `procore-hooks
  api --workers N` points its processes at one PROMETHEUS_MULTIPROC_DIR, and prometheus-client
  sums them at scrape time.
- Gauges that describe the database (gates by state, parked events, queue depth, heartbeat
  age) are read from Postgres by the api when scraped (`app.metrics.database`), at most once
  per METRICS_REFRESH_SECONDS, never per metric. Only the api sets them, so a worker's
  metrics port does not carry them.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

RejectReason = Literal[
    "auth", "too_large", "too_slow", "not_json", "unroutable", "storage", "internal"
]
JobOutcome = Literal["done", "skipped", "retrying", "dead", "parked"]
CallPurpose = Literal[
    "fetch", "probe", "diagnose", "token", "revoke", "connect", "hooks", "write", "lookup"
]
ProbeResult = Literal["opened", "still_closed", "error", "deferred"]
TokenResult = Literal["ok", "refused", "failed", "lost"]
TokenGrant = Literal["client_credentials", "refresh_token"]
HookSyncResult = Literal["unchanged", "changed", "skipped", "failed"]
ResyncAction = Literal["written", "absent"]
ResyncEnd = Literal["done", "failed"]
DeliveryOutcome = Literal["delivered", "failed", "dead", "refused"]
DestinationTransition = Literal["suspect", "parked", "released"]

_NS = "procore_hooks"

# `*_created` timestamps double the series count and no alert or dashboard here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_HOUR = 3600.0
# From sub-second (the normal path) to days (a company parked until it installs the app).
_LAG_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_LAG_BUCKETS += (_HOUR, 6 * _HOUR, 24 * _HOUR, 72 * _HOUR, 14 * 24 * _HOUR)

# --- receiver (api) -------------------------------------------------------------------------

EVENTS_RECEIVED = Counter(
    "events_received",
    "Valid webhook deliveries answered 2xx (new and duplicate), by payload version.",
    ["payload_version"],
    namespace=_NS,
)
EVENTS_DUPLICATE = Counter(
    "events_duplicate",
    "Deliveries of an event already stored (same ULID): answered 200, nothing stored.",
    namespace=_NS,
)
WEBHOOKS_REJECTED = Counter(
    "webhooks_rejected",
    "Deliveries answered non-2xx (Procore pauses the endpoint on each), by reason.",
    ["reason"],
    namespace=_NS,
)
EVENTS_IGNORED = Counter(
    "events_ignored",
    "New events stored as `ignored` (caused by this app itself: loop prevention).",
    namespace=_NS,
)
EVENTS_UNSUPPORTED = Counter(
    "events_unsupported",
    "New events stored as `unsupported` (unknown resource or reason; visible, not processed).",
    namespace=_NS,
)

EVENTS_PARKED_ON_RECEIPT = Counter(
    "events_parked_on_receipt",
    "New events stored `parked` at once: their company or project gate was parked.",
    namespace=_NS,
)

# --- pipeline (worker) ----------------------------------------------------------------------

JOBS = Counter(
    "jobs",
    "Events whose processing ended a job run, by outcome.",
    ["outcome"],
    namespace=_NS,
)
ROWS_PRUNED = Counter(
    "rows_pruned",
    "Rows deleted past their retention: finished events (EVENTS_RETENTION_DAYS), the call "
    "audit (PROCORE_CALLS_RETENTION_DAYS).",
    ["table"],
    namespace=_NS,
)
EVENTS_EXPIRED = Counter(
    "events_expired",
    "Parked events that outlived the retention and went to `dead` (expired_while_parked).",
    namespace=_NS,
)
EVENT_LAG = Histogram(
    "event_lag_seconds",
    "End-to-end lag of an event: received by the api → final (done, skipped or dead).",
    namespace=_NS,
    # From sub-second (the normal path) to days (a company parked until it installs the app).
    buckets=_LAG_BUCKETS,
)
PROCORE_CALLS = Counter(
    "procore_calls",
    "Calls to Procore by answer status class (401/403/404/429 apart) and purpose.",
    ["status_class", "purpose"],
    namespace=_NS,
)
WRITE_JOBS = Counter(
    "write_jobs",
    "Write jobs (the connector's own changes to Procore) leaving a run, by their new status.",
    ["status"],
    namespace=_NS,
)
FORBIDDEN_24H = Gauge(
    "forbidden_calls_24h",
    "403 answers Procore gave us in the last 24 hours, per company (the 100 with most): "
    "Procore's Integration Health counts every one, probes included.",
    ["company_id"],
    namespace=_NS,
)
PROBES = Counter(
    "probes",
    "Probes of parked gates (including an operator's confirm-install), by result.",
    ["result"],
    namespace=_NS,
)
TOKEN_RENEWALS = Counter(
    "token_refreshes",
    "Access-token renewals (client-credentials mint or refresh-token rotation), by result.",
    ["grant", "result"],
    namespace=_NS,
)

# --- subscriptions and resync (worker) ------------------------------------------------------

HOOK_SYNCS = Counter(
    "hook_syncs",
    "Hook syncs of a company: unchanged, changed (Procore written), skipped (parked), failed.",
    ["result"],
    namespace=_NS,
)
HOOKS_REENABLED = Counter(
    "hooks_reenabled",
    "Hooks found disabled by Procore (after repeated delivery failures) and re-enabled.",
    namespace=_NS,
)
RESYNC_RESOURCES = Counter(
    "resync_resources",
    "Resources a resync wrote to the mirror (added or updated), or found absent from every "
    "list (handed to the pipeline, deleted only when Procore answers 404).",
    ["action"],
    namespace=_NS,
)
RESYNC_RUNS = Counter(
    "resync_runs",
    "Resync runs that ended, by status.",
    ["status"],
    namespace=_NS,
)

# --- downstream delivery (worker) ---------------------------------------------------------

DELIVERIES = Counter(
    "deliveries",
    "Delivery attempts to destinations, by outcome (delivered; failed: retried; dead: refused "
    "by the destination, kept as a dead letter; refused: address not allowed, nothing sent) "
    "and event family (resource, gate, hook, resync).",
    ["outcome", "family"],
    namespace=_NS,
)
DELIVERY_SECONDS = Histogram(
    "delivery_seconds",
    "Duration of one delivery attempt (connect to the last byte read of the answer).",
    namespace=_NS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DESTINATION_TRANSITIONS = Counter(
    "destination_transitions",
    "Destinations that became suspect (failing), parked (probes only) or were released.",
    ["to"],
    namespace=_NS,
)

# --- database state (api, refreshed at scrape time) ----------------------------------------

GATES = Gauge(
    "gates",
    "Gates by scope and state (open gates are only those that ever saw a signal).",
    ["scope", "state"],
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
OLDEST_PARKED_GATE = Gauge(
    "oldest_parked_gate_seconds",
    "How long the longest-parked gate has been parked (0 when none is).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
PARKED_EVENTS = Gauge(
    "parked_events",
    "Events held by a parked gate, waiting for the install to be confirmed.",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "queue_depth",
    "Events due now (queued, retrying, or processing with an expired lease).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_DUE = Gauge(
    "queue_oldest_due_seconds",
    "How long the oldest due event has been waiting (0 when none is due).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
WORKER_HEARTBEAT_AGE = Gauge(
    "worker_heartbeat_age_seconds",
    "Seconds since the freshest worker heartbeat (+Inf when no worker ever beat).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
DATABASE_STATE_AGE = Gauge(
    "database_state_age_seconds",
    "Age of the database gauges above (grows when Postgres cannot be read at scrape time).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)

DESTINATIONS = Gauge(
    "destinations",
    "Enabled destinations by state (open, suspect, parked).",
    ["state"],
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
DELIVERY_BACKLOG = Gauge(
    "delivery_backlog",
    "Mirror changes the furthest-behind enabled destination has not been past yet (an upper "
    "bound: changes it does not want count too).",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "dead_letters",
    "Dead letters not yet replayed successfully, over every destination.",
    namespace=_NS,
    multiprocess_mode="mostrecent",
)

GATE_SCOPES = ("credential", "company", "tool", "project", "project_tool")
DESTINATION_STATES = ("open", "suspect", "parked")
GATE_STATES = ("open", "suspect", "parked")


# --- call sites -----------------------------------------------------------------------------


# The received counter of each payload version (a handful), looked up once: `labels()` costs
# more than the increment on the receiver's path.
_RECEIVED_BY_VERSION: dict[str, Counter] = {}


def webhook_received(payload_version: str, *, duplicate: bool) -> None:
    received = _RECEIVED_BY_VERSION.get(payload_version)
    if received is None:
        received = _RECEIVED_BY_VERSION[payload_version] = EVENTS_RECEIVED.labels(payload_version)
    received.inc()
    if duplicate:
        EVENTS_DUPLICATE.inc()


def webhook_stored_as(status: str) -> None:
    """A new event stored without being queued (`ignored`, `unsupported` or `parked`)."""
    if status == "ignored":
        EVENTS_IGNORED.inc()
    elif status == "unsupported":
        EVENTS_UNSUPPORTED.inc()
    elif status == "parked":
        EVENTS_PARKED_ON_RECEIPT.inc()


def webhook_rejected(reason: RejectReason) -> None:
    WEBHOOKS_REJECTED.labels(reason).inc()


def job_outcome(outcome: JobOutcome, count: int = 1) -> None:
    """Events that left a job not final (`retrying`, `parked`); final ones: `event_finished`."""
    JOBS.labels(outcome).inc(count)


def event_finished(status: JobOutcome, lag_seconds: float | None) -> None:
    """An event reached a final state; `lag_seconds` = now - received_at."""
    JOBS.labels(status).inc()
    if lag_seconds is not None and status in ("done", "skipped", "dead"):
        EVENT_LAG.observe(max(0.0, lag_seconds))


def rows_pruned(table: str, count: int) -> None:
    if count:
        ROWS_PRUNED.labels(table).inc(count)


def events_expired(count: int) -> None:
    if count:
        EVENTS_EXPIRED.inc(count)
        JOBS.labels("dead").inc(count)


def procore_call(status: int | None, purpose: CallPurpose | str) -> None:
    """One HTTP answer from Procore (`status` None: no answer — timeout, connection error)."""
    PROCORE_CALLS.labels(status_class(status), _purpose(purpose)).inc()


def write_jobs(status: str, count: int = 1) -> None:
    """Write jobs a run left in `status` (succeeded, failed, retrying, parked, in_doubt)."""
    WRITE_JOBS.labels(status).inc(count)


def probe(result: ProbeResult) -> None:
    PROBES.labels(result).inc()


def token_refresh(result: TokenResult, grant: TokenGrant = "refresh_token") -> None:
    """`ok`; `refused` (Procore said no: re-auth needed); `failed` (transient, will retry);
    `lost` (the answer never arrived: the refresh token is gone, re-authorize)."""
    TOKEN_RENEWALS.labels(grant, result).inc()


def hook_sync(result: HookSyncResult) -> None:
    HOOK_SYNCS.labels(result).inc()


def hooks_reenabled(count: int) -> None:
    """Disabled hooks turned back on (each one also shows on the company's hooks view)."""
    if count:
        HOOKS_REENABLED.inc(count)


def resync_resources(action: ResyncAction, count: int) -> None:
    if count:
        RESYNC_RESOURCES.labels(action).inc(count)


def resync_finished(status: ResyncEnd) -> None:
    RESYNC_RUNS.labels(status).inc()


def delivery_attempt(outcome: DeliveryOutcome | str, seconds: float, event_type: str) -> None:
    family = event_type.partition(".")[0]
    DELIVERIES.labels(
        outcome if outcome in _DELIVERY_OUTCOMES else "failed",
        family if family in _FAMILIES else "other",
    ).inc()
    DELIVERY_SECONDS.observe(max(0.0, seconds))


def destination_transition(to: DestinationTransition) -> None:
    DESTINATION_TRANSITIONS.labels(to).inc()


_DELIVERY_OUTCOMES: frozenset[str] = frozenset(get_args(DeliveryOutcome))
_FAMILIES = frozenset({"resource", "gate", "hook", "resync", "job"})


def status_class(status: int | None) -> str:
    """Bounded label values; the answers the gates act on are kept apart."""
    if status is None:
        return "error"
    if status in (401, 403, 404, 429):
        return str(status)
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "other"


_PURPOSES: frozenset[str] = frozenset(get_args(CallPurpose))


def _purpose(purpose: str) -> str:
    return purpose if purpose in _PURPOSES else "other"
