#!/usr/bin/env bash
# Create the virtualenv (if missing) and install the project with its dev extras into it.
# Usage: scripts/venv.sh [PYTHON] [VENV]. The Makefile calls it only when pyproject.toml is
# newer than the venv's stamp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${1:-python3}
venv=${2:-.venv}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "venv: $python not found; install Python 3.11 or newer (or: make PYTHON=python3.12 ...)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "venv: $("$python" --version 2>&1) is too old; procore-hooks needs Python 3.11+" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "venv: creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi

echo "venv: installing procore-hooks[dev] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --editable ".[dev]"
