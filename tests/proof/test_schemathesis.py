"""Schemathesis against a whole deployment (api, worker, simulator, private Postgres/Redis):
every operation of `/openapi.json` but the webhook, all checks, stateful phase included.

    PROOF=1 .venv/bin/pytest tests/proof/test_schemathesis.py -s
    PROOF_SCHEMATHESIS_EXAMPLES=500 PROOF_SCHEMATHESIS_SEED=7 PROOF=1 .venv/bin/pytest ... -s

Passes when schemathesis finds nothing: no server error, no answer that violates the schema,
no undocumented status code, no schema-valid request refused, no schema-violating one taken.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from bench.cluster import Cluster
from tests import schema_fuzz

pytestmark = [pytest.mark.proof, pytest.mark.timeout(1800)]

EXAMPLES = int(os.environ.get("PROOF_SCHEMATHESIS_EXAMPLES", "200"))
SEED = int(os.environ.get("PROOF_SCHEMATHESIS_SEED", "1"))
ADMIN = "proof-admin-token"


@pytest.fixture(scope="module")
def deployed() -> Iterator[Cluster]:
    with Cluster(workers=1) as c:
        yield c


def test_schemathesis_finds_nothing(deployed: Cluster) -> None:
    result = schema_fuzz.run(deployed.api_url, ADMIN, examples=EXAMPLES, seed=SEED)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    print(f"\nschemathesis, {EXAMPLES} examples per operation, seed {SEED}:\n{summary}")
    assert re.search(r"Stateful", summary), "the stateful phase did not run"
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
