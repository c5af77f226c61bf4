"""Settings: list parsing and the production refusal that names the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import AppEnv, Settings

GOOD_PRODUCTION = {
    "app_env": "production",
    "webhook_auth_tokens": "a-long-random-webhook-value",
    "admin_token": "a-long-random-admin-value",
    "encryption_key": "7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o=",
    "procore_client_id": "client-123",
    "procore_client_secret": "secret-456",
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
