"""Schemathesis, a fuzzer nobody here wrote, against the running api's published schema.

`run` starts the `schemathesis` CLI on `<base_url>/openapi.json` with admin credentials, every
check and every phase (coverage, fuzzing, stateful), the webhook endpoint aside (it has its own
oracle-driven fuzzer), and returns the finished process: exit code 0 means no server error, no
answer violating the schema, no undocumented status code, no schema-valid request refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")
WEBHOOK_PATH = "/webhooks/procore"


def command(
    base_url: str, admin_token: str, *, examples: int, seed: int, deterministic: bool = False
) -> list[str]:
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {admin_token}",
        "--exclude-path",
        WEBHOOK_PATH,
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--no-color",
        "--workers",
        "1",
    ]
    if deterministic:
        argv.append("--generation-deterministic")
    return argv


def run(
    base_url: str,
    admin_token: str,
    *,
    examples: int,
    seed: int,
    deterministic: bool = False,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(base_url, admin_token, examples=examples, seed=seed, deterministic=deterministic),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
