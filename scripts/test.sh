#!/usr/bin/env bash
# The CI suite: pytest against the machine's real Postgres and Redis (`make test` starts them).
# Arguments go to pytest. A run that collects no tests is a failure, never a silent pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${VENV:-.venv}
status=0
"$venv/bin/pytest" "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests (exit 5); that is a failure, not a pass" >&2
fi
exit "$status"
