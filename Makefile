# Entry points for people and CI. `make run` and `make test` work on a fresh clone with only
# python3 (3.11+), make and git: they create the virtualenv and start Postgres and Redis (the
# machine's own, or embedded ones from PyPI when it has none; PROCORE_HOOKS_EMBEDDED=1 forces
# those).
#
#   make run        the service for development (migrations, api, worker)
#   make test       THE CI suite (what .ci/run calls)
#   make proof      the heavy runs: fault scenarios, fuzzers, slow scenarios, SDK conformance
#   make conformance  Procore's SDKs run unchanged against the simulator (conformance/)
#   make bench      every benchmark, written to BENCHMARKS.md
#
# Overrides: make test ARGS="-k webhooks -x"; VENV=/tmp/x/.venv make venv; PYTHON=python3.12.

SHELL := /bin/bash
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Touched after a successful install: the install reruns only when pyproject.toml is newer.
STAMP := $(VENV)/.procore-hooks-installed
ARGS ?=

export VENV

.PHONY: help venv services system-services embedded-status run test lint format typecheck check bench bench-ingest proof conformance docs-check deploy-check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv and install procore-hooks[dev] (only when pyproject.toml changed)

$(STAMP): pyproject.toml scripts/venv.sh
	@scripts/venv.sh "$(PYTHON)" "$(VENV)"
	@touch "$@"

services: ## Make sure PostgreSQL and Redis answer on 127.0.0.1 (start them if not)
	@scripts/services.sh

system-services: # bench and proof need the machine's own PostgreSQL and Redis
	@scripts/services.sh --system

run: venv ## Run the service for development: migrate, api on :8000, worker
	@scripts/services.sh --for app -- $(BIN)/procore-hooks dev $(ARGS)

test: venv ## Run the CI suite (pytest against real Postgres and Redis)
	@scripts/services.sh --for test -- scripts/test.sh $(ARGS)

embedded-status: ## Which embedded servers run in this checkout, and for which commands
	@$(BIN)/python scripts/embedded.py status

lint: venv ## ruff check + ruff format --check + import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv ## Apply ruff format and the safe ruff fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv ## mypy --strict over the service, workers, simulator, tests and benchmarks
	$(BIN)/mypy

check: lint typecheck test ## Everything CI checks

bench: venv system-services ## Every benchmark → BENCHMARKS.md (ARGS=--quick: ~6 min; full ~25 min)
	$(BIN)/python -m bench $(ARGS)

bench-ingest: venv system-services ## Ingest only: receiver vs bare FastAPI vs naive stack (wrk)
	$(BIN)/python -m bench.ingest $(ARGS)

proof: venv system-services ## Fault scenarios + fuzzers on private Postgres/Redis, slow scenarios, SDK conformance (~15 min)
	PROOF=1 $(BIN)/pytest tests/proof -s -p no:cacheprovider $(ARGS)
	$(BIN)/pytest -m slow -p no:cacheprovider
	conformance/run.sh

conformance: venv ## Procore's JS SDK, pyprocore and ProPyCore, pinned and unchanged, against the simulator
	conformance/run.sh $(ARGS)

docs-check: venv ## Headless Chromium renders /docs offline and finds every operation
	@scripts/docs-check.sh

deploy-check: ## Validate docker-compose.yml, lint the Dockerfile, validate deploy/kubernetes (schemas)
	@scripts/deploy-check.sh
