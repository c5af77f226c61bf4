#!/usr/bin/env bash
# Procore's SDKs, run unchanged against the simulator (`make conformance`; conformance/README.md).
#
#   conformance/run.sh                 every SDK: js-sdk pyprocore propycore
#   conformance/run.sh pyprocore       one (or several) of them
#
# 1. Builds each SDK's environment under conformance/build/ (git-ignored) from the pinned files:
#    js/package.json + js/package-lock.json (npm ci, no install scripts), and a virtualenv per
#    Python SDK from requirements/<sdk>.txt (exact pins, --no-deps, then pip check). A build is
#    redone only when its pins change.
# 2. Starts the simulator (the project's .venv: `make venv`) on a free loopback port.
# 3. Per SDK: resets the simulator to its seed, sets that SDK's switches (below), runs its
#    checks, and keeps the output in conformance/build/logs/<sdk>.out.
# 4. Prints the tally per SDK and exits 1 if any SDK had a failure (2 if it could not run).
#
# Switches: the simulator answers as Procore documents by default. One documented rule is
# relaxed for the two PyPI SDKs, because neither can send what it requires:
#   company_header=inferred for pyprocore and propycore: both omit Procore-Company-Id on calls
#   the docs require it on (tutorials/tutorial_mpz.md; oauth/oauth_client_credentials.md for a
#   service account's /me and /companies); the simulator takes the company from the call's
#   path, company_id or project instead. The JS SDK runs with the documented rule.
#
# Environment: PY312 (a Python >= 3.12 for pyprocore; found by itself otherwise), SIM_PYTHON
# (default .venv/bin/python), CONFORMANCE_BUILD (default conformance/build), FLOW_TIMEOUT_S,
# VERBOSE=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
BUILD="${CONFORMANCE_BUILD:-$HERE/build}"
LOGS="$BUILD/logs"
SIM_PYTHON="${SIM_PYTHON:-$ROOT/.venv/bin/python}"
ALL_SDKS=(js-sdk pyprocore propycore)
# The default seed's client, company and project (simulator/seed.py).
export CLIENT_ID="${CLIENT_ID:-sim-client}" CLIENT_SECRET="${CLIENT_SECRET:-sim-secret}"
export COMPANY_ID="${COMPANY_ID:-31}" PROJECT_ID="${PROJECT_ID:-900}" SIM_CONTROL=1

switches_for() {
  case "$1" in
    js-sdk) echo '{}' ;;
    pyprocore | propycore) echo '{"company_header": "inferred"}' ;;
  esac
}

say() { printf 'conformance: %s\n' "$*"; }
die() { say "$*" >&2; exit 2; }

sdks=("$@")
[ ${#sdks[@]} -gt 0 ] || sdks=("${ALL_SDKS[@]}")
for sdk in "${sdks[@]}"; do
  [[ " ${ALL_SDKS[*]} " == *" $sdk "* ]] || die "unknown SDK '$sdk' (one of: ${ALL_SDKS[*]})"
done
[ -x "$SIM_PYTHON" ] || die "$SIM_PYTHON not found: run 'make venv' first"
command -v curl >/dev/null || die "curl is needed for the simulator's control API"
mkdir -p "$LOGS"

# -- environments ---------------------------------------------------------------------------

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

build_js() {
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for js-sdk"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
    die "js-sdk needs Node.js >= 18 (found $(node --version))"
  local dir="$BUILD/js" want
  want="$(fingerprint "$HERE/js/package.json" "$HERE/js/package-lock.json")"
  if [ "$(cat "$dir/.pins" 2>/dev/null)" != "$want" ]; then
    say "js-sdk: npm ci (package-lock.json)"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$HERE/js/package.json" "$HERE/js/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" >"$dir/.pins"
  fi
}

python_312() {
  if [ -n "${PY312:-}" ]; then echo "$PY312"; return; fi
  # pyenv's python3.12 shim fails unless 3.12 is selected: try the interpreters themselves.
  local root candidate
  root="$(pyenv root 2>/dev/null || true)"
  for candidate in ${root:+"$root"/versions/3.1[2-9]*/bin/python3} python3.13 python3.12 python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

build_python() {  # name requirements-file
  local name=$1 pins=$2 dir="$BUILD/$1" python want
  python="$(python_312)" || die "$name needs Python >= 3.12 (set PY312=/path/to/python3.12)"
  want="$(fingerprint "$pins")-$("$python" -c 'import sys; print(sys.version.split()[0])')"
  if [ "$(cat "$dir/.pins" 2>/dev/null)" != "$want" ]; then
    say "$name: virtualenv from $(basename "$pins") ($("$python" --version))"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$pins"
    "$dir/bin/python" -m pip check
    echo "$want" >"$dir/.pins"
  fi
}

build() {
  case "$1" in
    js-sdk) build_js ;;
    pyprocore) build_python pyprocore "$HERE/requirements/pyprocore.txt" ;;
    propycore) build_python propycore "$HERE/requirements/propycore.txt" ;;
  esac
}

command_for() {
  case "$1" in
    js-sdk) echo "env NODE_PATH=$BUILD/js/node_modules node $HERE/js/check_js_sdk.js" ;;
    pyprocore) echo "$BUILD/pyprocore/bin/python $HERE/check_pyprocore.py" ;;
    propycore) echo "$BUILD/propycore/bin/python $HERE/check_propycore.py" ;;
  esac
}

for sdk in "${sdks[@]}"; do build "$sdk"; done

# -- the simulator ----------------------------------------------------------------------------

SIM_PID=""
stop_simulator() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
}
trap stop_simulator EXIT

(cd "$ROOT" && exec "$SIM_PYTHON" -m simulator --host 127.0.0.1 --port 0) >"$LOGS/simulator.out" 2>&1 &
SIM_PID=$!
SIM=""
for _ in $(seq 1 300); do
  SIM="$(sed -n 's/^Procore simulator on \(http[^ ]*\).*/\1/p' "$LOGS/simulator.out")"
  [ -n "$SIM" ] && curl -fsS -o /dev/null "$SIM/_sim" 2>/dev/null && break
  kill -0 "$SIM_PID" 2>/dev/null || { cat "$LOGS/simulator.out" >&2; die "the simulator did not start"; }
  SIM=""
  sleep 0.1
done
[ -n "$SIM" ] || die "the simulator did not answer within 30 s"
say "simulator on $SIM (pid $SIM_PID)"

control() {  # method path [json]
  curl -fsS -o /dev/null -X "$1" "$SIM$2" -H 'Content-Type: application/json' ${3:+--data "$3"}
}

# -- the runs ---------------------------------------------------------------------------------

declare -A tally status
failed=0
for sdk in "${sdks[@]}"; do
  control POST /_sim/reset
  control PUT /_sim/switches "$(switches_for "$sdk")"
  # The checks are about shapes and flows, not pacing (which the service's own tests prove):
  # some SDKs page until an empty page and never wait out a 429.
  control PUT /_sim/rate_limit '{"hourly": 1000000, "spike": 1000000}'
  say "== $sdk (switches: $(switches_for "$sdk"))"
  set +e
  # shellcheck disable=SC2046 # the command is words by design
  BASE_URL="$SIM" LOGIN_URL="$SIM" $(command_for "$sdk") 2>"$LOGS/$sdk.err" | tee "$LOGS/$sdk.out"
  code=${PIPESTATUS[0]}
  set -e
  status[$sdk]=$code
  tally[$sdk]="$(grep -E '^[A-Za-z-]+: [0-9]+ passed, [0-9]+ failed' "$LOGS/$sdk.out" | tail -n 1)"
  [ -n "${tally[$sdk]}" ] || tally[$sdk]="$sdk: no tally (exit $code; see $LOGS/$sdk.err)"
  [ "$code" -eq 0 ] || failed=1
done

echo
say "tallies (flow lines and reasons above; logs in $LOGS)"
for sdk in "${sdks[@]}"; do
  printf '  %-10s exit %s  %s\n' "$sdk" "${status[$sdk]}" "${tally[$sdk]}"
done
exit "$failed"
