"""`/docs` renders offline: headless Chromium loads the page from a running api with every other
host unreachable, and the rendered page must list every operation of `/openapi.json`.

    .venv/bin/python scripts/docs_check.py        (or `make docs-check`, which installs Chromium)

The api runs in this process on a free port; it needs no database or Redis to serve its docs.
Chromium starts with a fresh profile and no background traffic, and resolves no name but
127.0.0.1, so a page that still fetched Swagger UI from a CDN would render nothing.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import uvicorn

from app.main import create_app
from app.settings import Settings

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# One rendered operation: its block's method class, then the path of its summary.
_OPERATION = re.compile(r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]*)"', re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("docs-check: chromium not found (apt-get install -y chromium)")
    return found


def render(url: str) -> str:
    """The page's DOM once Swagger UI has fetched the schema and drawn it."""
    with tempfile.TemporaryDirectory(prefix="docs-check-") as profile:
        answer = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                # Offline: no name resolves but the api's own address.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                # Let the page's scripts and fetches run to completion before the dump.
                "--virtual-time-budget=20000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if answer.returncode != 0 or not answer.stdout.strip():
        raise SystemExit(f"docs-check: chromium failed ({answer.returncode}):\n{answer.stderr}")
    return answer.stdout


def expected_operations(schema: dict[str, object]) -> set[tuple[str, str]]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in METHODS
    }


def rendered_operations(dom: str) -> set[tuple[str, str]]:
    return {(m.upper(), html.unescape(p)) for m, p in _OPERATION.findall(dom)}


def main() -> int:
    port = free_port()
    settings = Settings(
        _env_file=None,
        app_env="development",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/unused",
        redis_url="redis://127.0.0.1:1/0",
        log_level="WARNING",
        log_format="console",
        api_gc_freeze=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise SystemExit("docs-check: the api did not start")
            time.sleep(0.05)
        expected = expected_operations(httpx.get(f"{base}/openapi.json", timeout=10).json())
        shown = rendered_operations(render(f"{base}/docs"))
    finally:
        server.should_exit = True
        thread.join(15)
    missing, extra = sorted(expected - shown), sorted(shown - expected)
    print(f"docs-check: /docs lists {len(shown & expected)} of {len(expected)} operations, offline")
    for method, path in missing:
        print(f"docs-check: missing {method} {path}", file=sys.stderr)
    for method, path in extra:
        print(f"docs-check: not in the schema {method} {path}", file=sys.stderr)
    return 1 if missing or extra or not expected else 0


if __name__ == "__main__":
    sys.exit(main())
