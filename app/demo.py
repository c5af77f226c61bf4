"""`procore-hooks dev` without Procore credentials: the simulator stands in for Procore.

The simulator's default seed has companies 31, 32 and 33, and a project the service account
may not see (31/902). The worker's install discovery finds the companies where the app is
installed and creates their hooks through the simulated Webhooks API, as it would against
Procore; then company 33 uninstalls the app and a trickle of changes starts, so a newcomer
sees events flowing, then company 33 and project 902 parked, within a minute — and installs
the app in company 33 again with one command to watch its events released.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.settings import DEV_ADMIN_TOKEN, DEV_WEBHOOK_SECRET, Settings
from app.setup import links

# The hooks the service makes through the simulated Webhooks API carry each company's own
# token, derived from DEV_WEBHOOK_SECRET (app.webhooks.tokens) unless WEBHOOK_AUTH_TOKENS is set.
__all__ = ["DEV_ADMIN_TOKEN", "DEV_WEBHOOK_SECRET", "Demo", "plan"]
PARKED_COMPANY = 33
# The OAuth client of the simulator's default seed (simulator/seed.py): a documented,
# development-only pair. The service speaks to the simulator over HTTP only, as to Procore.
SIM_CLIENT_ID = "sim-client"
SIM_CLIENT_SECRET = "sim-secret"  # noqa: S105 (development only)

# (company, project, resource, id): changes the trickle cycles through. 33 has not installed
# the app; 31/902 is a project the service account is not a member of.
_CHANGES = (
    (31, 900, "RFIs", 5150),
    (32, 910, "Submittals", 8813),
    (33, 920, "RFIs", 5170),
    (31, 900, "Observation Items", 7001),
    (31, 902, "RFIs", 5180),
    (32, 910, "RFIs", 5160),
    (31, 901, "RFIs", 5152),
    (33, 920, "RFIs", 5170),
)


@dataclass(slots=True)
class Demo:
    api_url: str
    sim_url: str
    # Environment for the api and worker processes: Procore is the simulator.
    env: dict[str, str]
    settings: Settings
    interval_s: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            if not wait_until_up(client, f"{self.sim_url}/_sim", self._stop):
                print(f"demo: {self.sim_url} did not answer; no events sent", flush=True)
                return
            try:
                self._stage(client)
            except httpx.HTTPError as exc:
                print(f"demo: could not set up the simulator: {exc}", flush=True)
                return
            # The worker's install discovery finds 31, 32 and 33 and creates their hooks
            # through the simulated Webhooks API, exactly as against Procore.
            if not self._wait_for_hooks(client):
                print("demo: the hooks did not appear; is the worker running?", flush=True)
                return
            # Then company 33 uninstalls the app: its hook still delivers, its calls fail.
            client.put(f"{self.sim_url}/_sim/companies/{PARKED_COMPANY}", json={"installed": False})
            print(self.banner(), flush=True)
            for company, project, resource, resource_id in itertools.cycle(_CHANGES):
                if self._stop.wait(self.interval_s):
                    return
                change = {
                    "company_id": company,
                    "project_id": project,
                    "resource_name": resource,
                    "resource_id": resource_id,
                    "event_type": "update",
                }
                try:
                    client.post(f"{self.sim_url}/_sim/events", json=change)
                except httpx.HTTPError:
                    continue  # the simulator is stopping, or busy: the next tick retries

    def _stage(self, client: httpx.Client) -> None:
        # Procore wants https destinations; the local api is plain http.
        client.put(
            f"{self.sim_url}/_sim/switches", json={"allow_http_destinations": True}
        ).raise_for_status()
        client.put(
            f"{self.sim_url}/_sim/companies/{PARKED_COMPANY}", json={"installed": True}
        ).raise_for_status()

    def _wait_for_hooks(self, client: httpx.Client, timeout_s: float = 90) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                hooks = client.get(f"{self.sim_url}/_sim/webhooks").json()["hooks"]
            except (httpx.HTTPError, ValueError, KeyError):
                hooks = []
            if {h["owned_by_company_id"] for h in hooks} >= {31, 32, PARKED_COMPANY}:
                return True
            time.sleep(0.5)
        return False

    def banner(self) -> str:
        admin = self.env["ADMIN_TOKEN"].split(",")[0]
        setup = links.setup_link(self.settings, PARKED_COMPANY).url
        install = (
            f"curl -X PUT {self.sim_url}/_sim/companies/{PARKED_COMPANY} "
            "-H 'Content-Type: application/json' -d '{\"installed\": true}'"
        )
        return "\n".join(
            (
                "",
                f"Procore simulator on {self.sim_url}: the worker found companies 31, 32 and"
                f" {PARKED_COMPANY} and subscribed them; {PARKED_COMPANY} has now uninstalled the"
                " app, and project 902 does not admit the service account.",
                "Events are flowing. Watch them:",
                "  procore-hooks status",
                f"  curl -H 'Authorization: Bearer {admin}' {self.api_url}/admin/gates",
                f"Company {PARKED_COMPANY} gets parked within a minute. Install the app there:",
                f"  {install}",
                "The next probe opens its gate and releases its events in order; or check",
                f"at once:  curl -X POST -H 'Authorization: Bearer {admin}' "
                f"{self.api_url}/admin/companies/{PARKED_COMPANY}/confirm-install",
                f"Its setup page (what its admin is told to do): {setup}",
                "",
            )
        )


def plan(settings: Settings, *, api_port: int, sim_port: int) -> Demo:
    """The environment that points the api and worker at the simulator, filling in the
    development secrets that are not set (shown, never used outside development)."""
    api_url = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        "PROCORE_API_BASE": sim_url,
        "PROCORE_LOGIN_BASE": sim_url,
        "PROCORE_CLIENT_ID": SIM_CLIENT_ID,
        "PROCORE_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "PUBLIC_BASE_URL": api_url,
    }
    values = {
        "WEBHOOK_AUTH_TOKENS": settings.webhook_auth_tokens,
        "WEBHOOK_SHARED_TOKENS": settings.webhook_shared_tokens,
        "ADMIN_TOKEN": settings.admin_token,
        "ENCRYPTION_KEY": settings.encryption_key,
    }
    for name, current in values.items():
        env[name] = ",".join(v.get_secret_value() for v in current)
    env["WEBHOOK_AUTH_TOKENS"] = env["WEBHOOK_AUTH_TOKENS"] or DEV_WEBHOOK_SECRET
    env["ADMIN_TOKEN"] = env["ADMIN_TOKEN"] or DEV_ADMIN_TOKEN
    # A key made up for this run: tokens stored under it are unreadable after a restart, so
    # they are simply minted again (set ENCRYPTION_KEY in .env to keep them).
    env["ENCRYPTION_KEY"] = env["ENCRYPTION_KEY"] or Fernet.generate_key().decode()
    keys = [SecretStr(k.strip()) for k in env["ENCRYPTION_KEY"].split(",") if k.strip()]
    signing = settings.model_copy(update={"encryption_key": keys, "public_base_url": api_url})
    return Demo(api_url=api_url, sim_url=sim_url, env=env, settings=signing)


def wait_until_up(
    client: httpx.Client, url: str, stop: threading.Event | None = None, timeout_s: float = 60
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        try:
            if client.get(url).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
