"""`procore-hooks dev` without Procore credentials: the simulator stands in (plan only; the
full run is exercised by hand, see the report), and `simulate` refuses production."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from app import demo
from app.settings import Settings
from app.setup import links
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.test_cli import run_cli


def test_plan_points_everything_at_the_simulator(settings: Settings) -> None:
    bare = make_settings(
        settings.database_url,
        procore_client_id="",
        procore_client_secret="",
        webhook_auth_tokens="",
        webhook_shared_tokens="",
        admin_token="",
        encryption_key="",
    )
    assert bare.uses_simulator
    plan = demo.plan(bare, api_port=18000, sim_port=18001)
    assert plan.env["PROCORE_API_BASE"] == "http://127.0.0.1:18001"
    assert plan.env["PROCORE_LOGIN_BASE"] == "http://127.0.0.1:18001"
    assert plan.env["PROCORE_CLIENT_ID"] == "sim-client"
    assert plan.env["WEBHOOK_AUTH_TOKENS"] == demo.DEV_WEBHOOK_SECRET
    # No shared token: the demo's hooks are made by the hooks sync, one token per company.
    assert plan.env["WEBHOOK_SHARED_TOKENS"] == ""
    assert plan.env["ADMIN_TOKEN"] == demo.DEV_ADMIN_TOKEN
    assert len(plan.env["ENCRYPTION_KEY"]) == 44  # a generated Fernet key

    banner = plan.banner()
    install = (
        "curl -X PUT http://127.0.0.1:18001/_sim/companies/33 "
        "-H 'Content-Type: application/json' -d '{\"installed\": true}'"
    )
    assert install in banner
    assert "/admin/companies/33/confirm-install" in banner
    setup = banner.split("Its setup page (what its admin is told to do): ")[1].split()[0]
    query = {k: v[0] for k, v in parse_qs(urlsplit(setup).query).items()}
    assert setup.startswith("http://127.0.0.1:18000/setup?")
    assert links.verify_setup(plan.settings, query["company"], query["expires"], query["sig"]) == 33


def test_plan_keeps_configured_secrets(settings: Settings) -> None:
    configured = make_settings(settings.database_url, procore_client_id="")
    plan = demo.plan(configured, api_port=8000, sim_port=8001)
    assert plan.env["ADMIN_TOKEN"] == ADMIN_TOKEN
    assert plan.env["ENCRYPTION_KEY"] == configured.encryption_key[0].get_secret_value()


def test_simulate_refuses_production() -> None:
    result = run_cli(
        "simulate",
        APP_ENV="production",
        WEBHOOK_AUTH_TOKENS="a-real-webhook-secret-5c1e9b7d3f0a2e48",
        ADMIN_TOKEN="a-real-admin-token-8e2b6d0f4a9c1e73",
        ENCRYPTION_KEY="7tq2pEGJN0dBqz4Uq0Yf9V3aZfKq0S0CqkzQ2rJ1b0o=",
        PROCORE_CLIENT_ID="client",
        PROCORE_CLIENT_SECRET="a-real-secret",
        PUBLIC_BASE_URL="https://hooks.procore-hooks.test",
        SETUP_LINK_KEYS="a-real-setup-link-key-2b7e0c9a4f1d6e83",
        EMBED_KEYS="a-real-embed-key-value-6a1f3e8c0b5d7e29",
    )
    assert result.returncode == 2
    assert "the simulator does not run with APP_ENV=production" in result.stderr
