#!/usr/bin/env bash
# `/docs` renders offline in headless Chromium and lists every operation (scripts/docs_check.py).
# Installs Debian's chromium first when it is missing and this runs as root (CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "docs-check: chromium is not installed (apt-get install -y chromium)" >&2
    exit 1
  fi
  echo "docs-check: installing chromium (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
exec "${VENV:-.venv}/bin/python" scripts/docs_check.py
