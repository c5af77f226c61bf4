"""Settings: list parsing and the production refusal that names the variable."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.settings import (
    DEV_ADMIN_TOKEN,
    DEV_WEBHOOK_SECRET,
    DEV_WEBHOOK_TOKEN,
    AppEnv,
    Settings,
)

GOOD_PRODUCTION = {
    "app_env": "production",
    "webhook_auth_tokens": "a-long-random-webhook-value-6d0f2a9c81",
    "admin_token": "a-long-random-admin-value-93b1e7c4d2aa",
    "encryption_key": "7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o=",
    "procore_client_id": "client-123",
    "procore_client_secret": "secret-456",
    "public_base_url": "https://hooks.procore-hooks.test",
    "setup_link_keys": "a-long-random-setup-link-key-0f3c9a7e52",
    "embed_keys": "a-long-random-embed-key-value-7d21b8e4c6",
}


def build(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_comma_separated_lists_are_split_for_rotation() -> None:
    settings = build(webhook_auth_tokens="new-token, old-token", admin_token="a,b")
    assert [t.get_secret_value() for t in settings.webhook_auth_tokens] == [
        "new-token",
        "old-token",
    ]
    assert len(settings.admin_token) == 2


def test_secrets_are_not_shown_in_repr() -> None:
    settings = build(webhook_auth_tokens="super-secret-value")
    assert "super-secret-value" not in repr(settings)


def test_production_with_real_values_starts() -> None:
    assert build(**GOOD_PRODUCTION).app_env is AppEnv.PRODUCTION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook_auth_tokens": ""}, "WEBHOOK_AUTH_TOKENS is not set"),
        ({"admin_token": "change-me"}, "ADMIN_TOKEN holds a placeholder value"),
        ({"encryption_key": ""}, "ENCRYPTION_KEY is not set"),
        ({"setup_link_keys": ""}, "SETUP_LINK_KEYS is not set"),
        ({"embed_keys": "short"}, "EMBED_KEYS: every value must have 32"),
        ({"procore_client_id": ""}, "PROCORE_CLIENT_ID is not set"),
        ({"procore_client_secret": "changeme"}, "PROCORE_CLIENT_SECRET holds a placeholder"),
        ({"metrics_token": "real-one,change-me"}, "METRICS_TOKEN holds a placeholder value"),
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(
    change: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**{**GOOD_PRODUCTION, **change})


def test_production_keeps_metrics_open_when_no_metrics_token_is_set() -> None:
    assert build(**{**GOOD_PRODUCTION, "metrics_token": ""}).metrics_token == []


def test_development_runs_without_procore_credentials_on_the_simulator() -> None:
    settings = build(app_env="development")
    assert settings.uses_simulator


def test_database_url_must_use_asyncpg() -> None:
    with pytest.raises(ValidationError, match="postgresql\\+asyncpg"):
        build(database_url="postgresql://x@y/z")


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("0.5", "EVENTS_RETENTION_DAYS must be 0 .keep every event. or at least 1"),
        ("0.01", "must outlive Procore's retries of its delivery"),
        ("-1", "greater than or equal to 0"),
        ("inf", "finite number"),
        ("40000", "less than or equal to 36500"),
    ],
)
def test_an_events_retention_shorter_than_procore_retries_is_refused(
    days: str, message: str
) -> None:
    # Procore retries a failed delivery for up to 12 hours (FACTS.md §2, "Delivery
    # behaviour"): a shorter retention would forget dedupe keys a retry still carries.
    with pytest.raises(ValidationError, match=message):
        build(events_retention_days=days)


@pytest.mark.parametrize("days", ["0.5", "0"])
def test_a_call_audit_kept_less_than_a_day_is_refused(days: str) -> None:
    # The 403s of the last day per company (GET /admin/summary, the gauge) are read there.
    with pytest.raises(ValidationError, match="procore_calls_retention_days"):
        build(procore_calls_retention_days=days)


@pytest.mark.parametrize(("days", "kept"), [("0", 0.0), ("1", 1.0), ("90", 90.0)])
def test_an_events_retention_of_a_day_or_more_or_zero_is_taken(days: str, kept: float) -> None:
    assert build(events_retention_days=days).events_retention_days == kept


# --- production refuses weak settings ------------------------------------------------------

ZERO_KEY = base64.urlsafe_b64encode(bytes(32)).decode()
PATTERN_KEY = base64.urlsafe_b64encode(b"ab" * 16).decode()
SAME = "x7Qp2v9LmN4rT8wZ1cF6hJ3kB5nD0sG7"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"admin_token": DEV_ADMIN_TOKEN}, "ADMIN_TOKEN holds a development value"),
        ({"webhook_auth_tokens": DEV_WEBHOOK_SECRET}, "WEBHOOK_AUTH_TOKENS holds a development"),
        (
            {"webhook_shared_tokens": DEV_WEBHOOK_TOKEN},
            "WEBHOOK_SHARED_TOKENS holds a development value",
        ),
        ({"admin_token": "a"}, "ADMIN_TOKEN: every value must have 32\\+ characters"),
        (
            {"admin_token": f"{SAME}-admin,short"},
            "ADMIN_TOKEN: every value must have 32\\+ characters",
        ),
        ({"webhook_auth_tokens": "short"}, "WEBHOOK_AUTH_TOKENS: every value must have 32"),
        (
            {"admin_token": SAME, "webhook_auth_tokens": SAME},
            "ADMIN_TOKEN must differ from every WEBHOOK_AUTH_TOKENS value",
        ),
        (
            {"admin_token": SAME, "webhook_shared_tokens": SAME},
            "ADMIN_TOKEN must differ from every WEBHOOK_SHARED_TOKENS value",
        ),
        (
            {"admin_token": SAME, "metrics_token": SAME},
            "ADMIN_TOKEN must differ from every METRICS_TOKEN value",
        ),
        ({"encryption_key": ZERO_KEY}, "ENCRYPTION_KEY holds a weak or malformed key"),
        ({"encryption_key": PATTERN_KEY}, "ENCRYPTION_KEY holds a weak or malformed key"),
        ({"encryption_key": "not-a-key"}, "ENCRYPTION_KEY holds a weak or malformed key"),
        ({"public_base_url": "http://hooks.test"}, "PUBLIC_BASE_URL must be an https:// URL"),
        ({"procore_api_base": "http://api.procore.com"}, "PROCORE_API_BASE must be an https"),
        (
            {"procore_login_base": "http://login.procore.com"},
            "PROCORE_LOGIN_BASE must be an https",
        ),
    ],
)
def test_production_refuses_weak_settings(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**{**GOOD_PRODUCTION, **change})


def test_development_accepts_what_production_refuses() -> None:
    settings = build(
        admin_token=DEV_ADMIN_TOKEN,
        webhook_auth_tokens=DEV_ADMIN_TOKEN,
        encryption_key=ZERO_KEY,
        public_base_url="http://127.0.0.1:8000",
    )
    assert settings.app_env is AppEnv.DEVELOPMENT


def test_a_generated_fernet_key_is_accepted() -> None:
    for _ in range(50):
        build(**{**GOOD_PRODUCTION, "encryption_key": Fernet.generate_key().decode()})


@pytest.mark.parametrize("namespace", ["Procore_Hooks", "hooks.app", "my hooks", ""])
def test_webhook_namespace_follows_procores_rule(namespace: str) -> None:
    """`plan_your_app/webhooks_api.md`: "Allowed characters: lowercase a-z, digits 0-9, and
    dashes" — a namespace Procore would refuse is refused at start-up, naming the setting."""
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, webhook_namespace=namespace)
    assert "webhook_namespace" in str(refused.value)
    assert Settings(_env_file=None, webhook_namespace="acme-sync-2").webhook_namespace == (
        "acme-sync-2"
    )
