"""Configuration: one pydantic-settings class, read from the environment and an optional `.env`.

The variable names are part of the operator contract (README, `.env.example`, compose file).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.registry import resources

# Values that ship in `.env.example` and the compose file; production refuses them.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "example")

# What `procore-hooks dev` fills in when nothing is configured (printed, development only).
DEV_WEBHOOK_TOKEN = "dev-webhook-token"  # noqa: S105
DEV_WEBHOOK_SECRET = "dev-webhook-secret"  # noqa: S105
DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105
DEVELOPMENT_VALUES = frozenset({DEV_WEBHOOK_TOKEN, DEV_WEBHOOK_SECRET, DEV_ADMIN_TOKEN})
# Bearer tokens and HMAC secrets shorter than this are refused in production.
MIN_SECRET_CHARS = 32


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_env: AppEnv = AppEnv.DEVELOPMENT

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/procore_hooks"
    # Pool per process; all replicas together must stay well under Postgres's max_connections.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "procore-hooks:queue"

    # Secrets from which each company's webhook `Authorization` value is derived
    # (app.webhooks.tokens), newest first: hooks are written with the first, any is accepted.
    webhook_auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Opt-in: literal `Authorization` values accepted for *any* company (hooks made by hand).
    # Empty by default; such a value proves nothing about the company a delivery names.
    webhook_shared_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Bearer tokens for /admin, a list so they can be rotated.
    admin_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Bearer tokens that reach /admin/jobs only (the connector's own system submits its writes
    # with one, without the rest of the admin API); optional.
    jobs_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # MultiFernet keys, newest first.
    encryption_key: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    procore_api_base: str = "https://api.procore.com"
    procore_login_base: str = "https://login.procore.com"
    procore_client_id: str = ""
    procore_client_secret: SecretStr = SecretStr("")
    public_base_url: str = "http://127.0.0.1:8000"

    # Subscriptions (app.subscriptions): each installed company gets one hook in this
    # namespace, pointing at PUBLIC_BASE_URL + /webhooks/procore, with a trigger per
    # resource of SYNC_RESOURCES and event type. Hooks of other namespaces are never touched.
    # Procore: "Allowed characters: lowercase a-z, digits 0-9, and dashes" (webhooks_api.md).
    webhook_namespace: str = Field(
        default="procore-hooks", min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$"
    )
    # Default: every type of the registry (app.registry.resources).
    sync_resources: Annotated[list[str], NoDecode] = Field(
        default_factory=resources.default_sync_resources
    )
    # Every company's hook is checked (and new installs discovered) this often.
    hooks_sync_interval_seconds: float = Field(default=3600.0, ge=1)
    # Install discovery lists the service account's companies without Procore-Company-Id;
    # a multi-region service account must send one: one company id per region.
    procore_discovery_company_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Resync (app.resync): page size of the list calls, and the lease a running resync holds.
    resync_page_size: int = Field(default=100, ge=1, le=1000)
    resync_lease_seconds: float = Field(default=120.0, gt=0)
    # Dated types (daily logs, timecards) list one day unless given dates: a resync lists
    # this many days back from today.
    resync_log_days: int = Field(default=90, ge=1, le=3660)

    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Every other route's body cap (admin, setup, connect: small JSON and forms), enforced
    # while reading and before authentication.
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # A request body (webhook included) not received whole within this is answered 408.
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    # `procore-hooks api` (app.serving): a request's headers must arrive whole within this
    # and this size, else the connection is closed; connections beyond API_MAX_CONNECTIONS
    # are answered 503 (Procore retries; a front such as deploy/nginx holds them first).
    header_read_timeout_seconds: float = Field(default=10.0, gt=0)
    api_max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    api_max_connections: int = Field(default=4096, ge=16)
    # Answer 503 rather than pass Procore's 5 s delivery timeout while Postgres is slow.
    webhook_store_timeout_seconds: float = Field(default=4.0, gt=0)
    # Move everything built at start-up (modules, routes, schemas, pools) out of the garbage
    # collector's way, so that full collections under load walk only what requests allocate,
    # and collect the youngest generation every 10,000 new objects rather than every 700.
    api_gc_freeze: bool = True
    # Group commit: how many webhook rows one INSERT may carry...
    ingest_batch_max: int = Field(default=256, ge=1)
    # ...and how many INSERTs are in flight at once, each on an asyncpg connection of its own.
    # One keeps Postgres busy and its batches large (`python -m bench.ingest`: 1 took ~15 %
    # more webhooks/s than 2, and 3 less again, on two cores with Postgres beside the api);
    # more may pay where Postgres is far away (a round trip per INSERT) and has cores to spare.
    ingest_connections: int = Field(default=1, ge=1, le=8)
    # A freshly received row is handed to the queue directly; the dispatcher leaves it alone
    # for this long so it is not enqueued twice (if the enqueue failed it is picked up after).
    dispatch_lease_seconds: float = Field(default=30.0, gt=0)
    # ...unless the queue already holds this many jobs (the workers are behind): then new rows
    # are left to the dispatcher, whose backlog cap keeps Redis small.
    ingest_handoff_max_jobs: int = Field(default=200, ge=1)
    # Rows committed this close together are handed to the queue as one job.
    ingest_handoff_window_seconds: float = Field(default=0.05, ge=0, le=5)
    dispatch_interval_seconds: int = Field(default=2, ge=1, le=60)
    dispatch_batch_size: int = Field(default=500, ge=1)
    dispatch_per_company: int = Field(default=100, ge=1)
    # The dispatcher stops handing out work while this many rows wait in Redis unclaimed.
    dispatch_max_backlog: int = Field(default=2000, ge=1)
    # Events per arq job: they share a job's fixed cost (the claim, the gate verdicts, one
    # transaction to apply). `python -m bench.pipeline --batch N` chose it: 100 drains ~1.3x
    # the events/s of 50 per worker process; 200 gains little more and doubles a job's work.
    job_batch_size: int = Field(default=100, ge=1)
    processing_lease_seconds: float = Field(default=120.0, gt=0)

    # Events of one job batch fetched at the same time (one process runs max_jobs batches)...
    process_concurrency: int = Field(default=16, ge=1)
    # ...and Procore calls in flight at once per process, whatever the number of jobs.
    procore_max_in_flight: int = Field(default=16, ge=1, le=100)
    # Transient failures (5xx, timeouts): full-jitter exponential backoff, then `dead`.
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_cap_seconds: float = Field(default=900.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    # Added on top of a 429/503 wait so the callers who waited do not return all at once.
    rate_limit_jitter_seconds: float = Field(default=0.5, ge=0)
    # A call that would wait longer than this for the shared rate budget is deferred (the
    # event goes back to `retrying`, no attempt spent) instead of holding its job.
    rate_limit_max_wait_seconds: float = Field(default=2.0, ge=0)
    # Calls allowed on a budget before any answer told us the real limit.
    rate_limit_initial_burst: int = Field(default=5, ge=1)
    procore_timeout_seconds: float = Field(default=20.0, gt=0)
    # Access tokens are refreshed this long before they expire.
    token_refresh_margin_seconds: float = Field(default=300.0, ge=0)
    # A decrypted access token is reused from process memory for this long.
    token_cache_seconds: float = Field(default=30.0, ge=0)
    # How long an issued Connect-to-Procore link stays usable.
    connect_link_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Connect links issued per company (or without one) in any hour, from any issuer.
    connect_links_per_hour: int = Field(default=10, ge=1)

    # Gates (DESIGN.md "Gates"): N signals within W park a scope; probes back off from base
    # to cap with jitter; parked events expire to `dead` after the retention.
    park_threshold: int = Field(default=3, ge=1)
    park_window_seconds: float = Field(default=600.0, gt=0)
    probe_base_seconds: float = Field(default=30.0, gt=0)
    probe_cap_seconds: float = Field(default=3600.0, gt=0)
    probe_lease_seconds: float = Field(default=120.0, gt=0)
    parked_retention_days: float = Field(default=14.0, gt=0)
    # Finished events (done, skipped, ignored, unsupported, dead) are deleted this long after
    # they finished (app.events.retention); 0 keeps them all. At least a day otherwise: the
    # dedupe key must outlive Procore's retries of a delivery (up to 12 h).
    events_retention_days: float = Field(default=30.0, ge=0, le=36500, allow_inf_nan=False)
    # The call audit (procore_calls, one row per call to Procore) is kept this long. At least a
    # day: the 403s of the last day per company and the probes' hourly budget are read there.
    procore_calls_retention_days: float = Field(default=7.0, ge=1, le=36500, allow_inf_nan=False)
    release_batch_size: int = Field(default=500, ge=1)
    # This many projects of one installed company refused at once are one incident (an app
    # update or reinstall reset the permitted projects, FACTS.md §3), never a company park.
    update_pending_projects: int = Field(default=3, ge=2)
    # Parked this long with nothing new, a gate stops probing (dormant) until a webhook from
    # its company, an operator, an OAuth connect or the `/companies` sweep wakes it.
    dormant_after_seconds: float = Field(default=900.0, gt=0)
    # Probes and diagnoses share at most this many calls per hour, across all gates.
    probe_budget_per_hour: int = Field(default=180, ge=1)

    # Write jobs (app.writes): items per sync call (Procore takes at most 1000), jobs a worker
    # takes from one company's lane at a time, the largest payload a job may carry, and the
    # body cap of a bulk submission (POST /admin/jobs/bulk; up to 1000 jobs).
    write_sync_batch_size: int = Field(default=resources.MAX_SYNC_ITEMS, ge=1, le=1000)
    write_lane_batch_size: int = Field(default=1000, ge=1, le=10_000)
    write_payload_max_bytes: int = Field(default=32 * 1024, ge=256, le=128 * 1024)
    write_bulk_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    # Downstream delivery (app.delivery): destinations get signed deliveries (Standard
    # Webhooks). A failing destination is retried one message at a time with full-jitter
    # backoff; DELIVERY_PARK_THRESHOLD failures in a row park it, and then only probes (one
    # at a time, capped backoff with jitter) reach it until one succeeds.
    delivery_park_threshold: int = Field(default=5, ge=1)
    delivery_retry_base_seconds: float = Field(default=1.0, gt=0)
    delivery_retry_cap_seconds: float = Field(default=60.0, gt=0)
    delivery_probe_base_seconds: float = Field(default=30.0, gt=0)
    delivery_probe_cap_seconds: float = Field(default=3600.0, gt=0)
    # One HTTP attempt, connect to last byte read; and how much of an answer is read.
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    delivery_max_answer_bytes: int = Field(default=4096, ge=0, le=65536)
    # Messages in flight per destination (distinct resources; one resource's messages go
    # one after the other). After a release the window starts at 1 and doubles per round.
    delivery_concurrency: int = Field(default=8, ge=1, le=64)
    delivery_batch_size: int = Field(default=100, ge=1, le=1000)
    # The lease of the worker delivering to a destination (one at a time across workers).
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    # A worker that delivered everything stays this long for what comes next, so a busy feed
    # streams through one job (at most two destinations linger per worker process).
    delivery_linger_seconds: float = Field(default=2.0, ge=0, le=30)
    delivery_attempts_retention_hours: float = Field(default=72.0, gt=0)
    # Where destinations may point in production besides public addresses (CIDRs, e.g. an
    # internal connector at 10.1.2.0/24). Loopback, private, link-local and metadata
    # addresses are refused otherwise; development allows every address and http.
    destination_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How long the previous secret still signs after a rotation (both signatures are sent).
    destination_secret_overlap_seconds: float = Field(default=86400.0, ge=0)
    # GET /admin/stream (Server-Sent Events over the change feed): streams per api process,
    # how long one lasts before the client reconnects (with Last-Event-ID), how often it
    # looks for new changes.
    stream_max_clients: int = Field(default=16, ge=1)
    stream_max_seconds: float = Field(default=300.0, gt=0)
    stream_poll_seconds: float = Field(default=0.5, gt=0)

    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_stale_seconds: float = Field(default=60.0, gt=0)
    worker_max_jobs: int = Field(default=10, ge=1)
    # How often an idle worker asks Redis for jobs: every hop of a change (webhook → mirror →
    # destination) waits for it.
    worker_poll_seconds: float = Field(default=0.1, gt=0, le=5)
    worker_metrics_port: int = Field(default=9100, ge=0)
    # The address the worker metrics port binds: loopback unless it is to be scraped from
    # elsewhere (in a container: 0.0.0.0, on a private network only).
    worker_metrics_host: str = "127.0.0.1"
    # Optional bearer tokens for /metrics and the worker metrics port (a list, for rotation);
    # empty: metrics are open (keep the port private then).
    metrics_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Gauges read from Postgres (gates, parked events, queue) are refreshed at most this often.
    metrics_refresh_seconds: float = Field(default=5.0, ge=0)
    # How long a signed setup-page link stays valid.
    setup_link_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # HMAC keys signing setup links and embed keys (app.setup.links), newest first: signed
    # with the first, verified against all (rotation with overlap; dropping one revokes what
    # it signed). Development derives them from ENCRYPTION_KEY when unset.
    setup_link_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    embed_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # An embed key (pasted once into the embedded app's configuration) expires after this.
    embed_key_ttl_days: float = Field(default=365.0, gt=0)
    health_queue_depth_degraded: int = Field(default=10_000, ge=1)
    health_oldest_due_degraded_seconds: float = Field(default=300.0, gt=0)

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    @field_validator(
        "webhook_auth_tokens",
        "webhook_shared_tokens",
        "admin_token",
        "jobs_token",
        "encryption_key",
        "metrics_token",
        "setup_link_keys",
        "embed_keys",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("destination_allowed_networks", mode="before")
    @classmethod
    def _networks_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("destination_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"DESTINATION_ALLOWED_NETWORKS: {network!r} is no CIDR") from exc
        return value

    @field_validator("procore_discovery_company_ids", mode="before")
    @classmethod
    def _ids_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("sync_resources", mode="before")
    @classmethod
    def _resources_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("sync_resources")
    @classmethod
    def _known_resources(cls, value: list[str]) -> list[str]:
        unknown = resources.unknown(value)
        if unknown:
            raise ValueError(
                f"SYNC_RESOURCES: unknown {', '.join(unknown)} "
                f"(supported: {', '.join(resources.NAMES)})"
            )
        return list(dict.fromkeys(value))

    @field_validator("events_retention_days")
    @classmethod
    def _outlives_procore_retries(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError(
                "EVENTS_RETENTION_DAYS must be 0 (keep every event) or at least 1: an event's "
                "dedupe key must outlive Procore's retries of its delivery (up to 12 hours)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must start with postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        if self.app_env is not AppEnv.PRODUCTION:
            return self
        problems: list[str] = []
        required = (
            ("WEBHOOK_AUTH_TOKENS", self.webhook_auth_tokens),
            ("ADMIN_TOKEN", self.admin_token),
            ("ENCRYPTION_KEY", self.encryption_key),
            ("SETUP_LINK_KEYS", self.setup_link_keys),
            ("EMBED_KEYS", self.embed_keys),
        )
        for name, values in required:
            if not values:
                problems.append(f"{name} is not set")
        tokens = (
            ("WEBHOOK_AUTH_TOKENS", self.webhook_auth_tokens),
            ("WEBHOOK_SHARED_TOKENS", self.webhook_shared_tokens),
            ("ADMIN_TOKEN", self.admin_token),
            ("METRICS_TOKEN", self.metrics_token),
            ("SETUP_LINK_KEYS", self.setup_link_keys),
            ("EMBED_KEYS", self.embed_keys),
            ("JOBS_TOKEN", self.jobs_token),
        )
        for name, values in (*tokens, ("ENCRYPTION_KEY", self.encryption_key)):
            texts = [v.get_secret_value() for v in values]
            if any(_is_placeholder(v) for v in texts):
                problems.append(f"{name} holds a placeholder value")
            elif any(v in DEVELOPMENT_VALUES for v in texts):
                problems.append(f"{name} holds a development value")
        for name, values in tokens:
            if any(len(v.get_secret_value()) < MIN_SECRET_CHARS for v in values):
                problems.append(f"{name}: every value must have {MIN_SECRET_CHARS}+ characters")
        admin = {v.get_secret_value() for v in self.admin_token}
        for name, values in tokens[:2] + tokens[3:]:
            if admin & {v.get_secret_value() for v in values}:
                problems.append(f"ADMIN_TOKEN must differ from every {name} value")
        if any(_weak_fernet_key(v.get_secret_value()) for v in self.encryption_key):
            problems.append("ENCRYPTION_KEY holds a weak or malformed key (generate one)")
        for name, url in (
            ("PUBLIC_BASE_URL", self.public_base_url),
            ("PROCORE_API_BASE", self.procore_api_base),
            ("PROCORE_LOGIN_BASE", self.procore_login_base),
        ):
            if not url.lower().startswith("https://"):
                problems.append(f"{name} must be an https:// URL")
        if not self.procore_client_id:
            problems.append("PROCORE_CLIENT_ID is not set")
        secret = self.procore_client_secret.get_secret_value()
        if not secret:
            problems.append("PROCORE_CLIENT_SECRET is not set")
        elif _is_placeholder(secret):
            problems.append("PROCORE_CLIENT_SECRET holds a placeholder value")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def webhook_token_values(self) -> list[bytes]:
        return [t.get_secret_value().encode() for t in self.webhook_auth_tokens]

    @property
    def uses_simulator(self) -> bool:
        """In development with no Procore credentials, the embedded simulator stands in."""
        return self.app_env is AppEnv.DEVELOPMENT and not self.procore_client_id


def _weak_fernet_key(value: str) -> bool:
    """Not a Fernet key (32 url-safe base64 bytes), or one no generator would produce: made
    of few distinct bytes (all zero, a repeated pattern)."""
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (ValueError, binascii.Error):
        return True
    # 32 random bytes have about 30 distinct values; fewer than 16 is never chance.
    return len(raw) != 32 or len(set(raw)) < 16


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


@lru_cache
def get_settings() -> Settings:
    return Settings()
