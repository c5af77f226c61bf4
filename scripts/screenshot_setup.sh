#!/usr/bin/env bash
# Headless screenshots of the setup page (public + a parked company through its signed link)
# and of the embedded side panel, to check how they render.
#
#   scripts/screenshot_setup.sh            # writes build/setup.png and build/embedded.png
#   OUT=/tmp/shots scripts/screenshot_setup.sh
#
# Needs Debian's chromium (`apt-get install -y chromium`) and the local Postgres the tests
# use. It creates a throwaway database (procore_hooks_screenshot), fills it with a demo
# company that has not installed the app and a project the service account cannot see,
# serves the api on a free port, shoots, and drops the database again.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${VENV:-.venv}/bin/python"
OUT="${OUT:-build}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [[ -z "$CHROMIUM" ]]; then
    echo "chromium not found: apt-get install -y chromium (or set CHROMIUM=...)" >&2
    exit 2
fi
mkdir -p "$OUT"

export PG_ADMIN_DSN="${PG_ADMIN_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}"
export CHROMIUM OUT
exec "$PYTHON" - <<'PY'
import asyncio
import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvicorn
from cryptography.fernet import Fernet

from app import migrate
from app.main import create_app
from app.settings import Settings
from app.setup import links

ADMIN = os.environ["PG_ADMIN_DSN"]
NAME = "procore_hooks_screenshot"
BASE = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
CHROMIUM, OUT = os.environ["CHROMIUM"], os.environ["OUT"]


async def recreate(drop_only: bool = False) -> None:
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await conn.close()


DEMO = """
INSERT INTO credentials (id, kind, label, client_id) VALUES (1, 'client_credentials', 'app', 'demo');
INSERT INTO company_credentials (company_id, credential_id, company_name, proved_at)
VALUES (31, 1, 'Acme Builders', now() - interval '3 days');
INSERT INTO gates (scope_key, scope, company_id, project_id, state, signals, parked_at,
                   parked_by, probe_attempt, next_probe_at, last_status, diagnosis, remediation)
VALUES ('company:31', 'company', 31, NULL, 'parked', 3, now() - interval '2 hours', 'policy', 4,
        now() + interval '7 minutes', 403, 'not_installed',
        'install the app in company 31 (Company Admin → App Management, from the Marketplace '
        'or as a custom app), then add the service account to the projects to sync and '
        'assign a permission template. Work resumes by itself once a check succeeds.'),
       ('project:31:902', 'project', 31, 902, 'parked', 3, now() - interval '1 day', 'policy', 6,
        now() + interval '40 minutes', 403, 'no_project_access',
        'add the service account (or the connected user) to project 902 in company 31 and '
        'assign a permission template; after an app update or reinstall this must be done '
        'again');
INSERT INTO events (dedupe_key, payload_version, company_id, project_id, resource_name,
                    resource_id, event_type, raw, status, gate_id, received_at, finished_at)
SELECT 'DEMO' || g, 'v2', 31, 900, (ARRAY['RFIs', 'Submittals', 'Observation Items'])[g % 3 + 1],
       5000 + g, 'update', '{}',
       CASE WHEN g <= 40 THEN 'done' WHEN g <= 43 THEN 'skipped' ELSE 'parked' END,
       CASE WHEN g > 43 THEN 1 END, now() - make_interval(mins => 200 - g),
       CASE WHEN g <= 43 THEN now() - make_interval(mins => 199 - g) END
FROM generate_series(1, 55) g;
INSERT INTO resources (company_id, resource_name, resource_id, project_id, data)
SELECT 31, (ARRAY['RFIs', 'Submittals', 'Observation Items'])[g % 3 + 1], 5000 + g, 900, '{}'
FROM generate_series(1, 40) g;
"""


async def seed(url: str) -> None:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(DEMO)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shoot(url: str, path: str, width: int, height: int) -> None:
    subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=60,
    )
    if not os.path.exists(path):
        raise SystemExit(f"chromium wrote no {path}")
    print(f"wrote {path}  ({url.split('?')[0]})")


def main() -> None:
    asyncio.run(recreate())
    url = f"{BASE}/{NAME}"
    migrate.upgrade(url)
    asyncio.run(seed(url))
    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=url,
        public_base_url=f"http://127.0.0.1:{port}",
        encryption_key=os.environ.get("ENCRYPTION_KEY") or Fernet.generate_key().decode(),
        log_level="WARNING",
        log_format="console",
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the api did not start")
        setup = links.setup_link(settings, 31).url
        embedded = (
            f"http://127.0.0.1:{port}/embedded?company_id=31&project_id=902"
            f"&key={links.embed_key(settings, 31)}"
        )
        shoot(f"http://127.0.0.1:{port}/setup", f"{OUT}/setup-public.png", 1000, 2300)
        shoot(setup, f"{OUT}/setup.png", 1000, 3200)
        shoot(embedded, f"{OUT}/embedded.png", 400, 900)
    finally:
        server.should_exit = True
        thread.join(10)
        asyncio.run(recreate(drop_only=True))


main()
PY
