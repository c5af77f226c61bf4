"""The proof suite: fault scenarios over real processes and the bad-input fuzzers.

Not part of the CI run. The directory is collected only when asked for:

    PROOF=1 .venv/bin/pytest tests/proof -s            # everything here
    .venv/bin/pytest tests/proof -m proof -s -k kill    # one scenario (`-m proof` enables too)

Without PROOF=1 (or a `-m` expression naming `proof`), every test module here is ignored at
collection, so `make test` / `.ci/run` never import them and stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def proof_enabled(config: pytest.Config) -> bool:
    markexpr = config.getoption("markexpr", default="") or ""
    return os.environ.get("PROOF") == "1" or "proof" in markexpr


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "proof: heavy reliability proof (real processes, faults, fuzzing); opt-in"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == HERE and collection_path.name.startswith("test_"):
        return None if proof_enabled(config) else True
    return None
