#!/usr/bin/env bash
# Make sure the machine's PostgreSQL and Redis answer on 127.0.0.1; start them if they do not,
# then wait until they do. Idempotent: running services are left alone.
set -euo pipefail

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-30}

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
    echo "services: PostgreSQL is not installed (apt-get install postgresql)" >&2
    return 1
  fi
  local version
  # The newest installed major version (directory names are plain numbers: 15, 16...).
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
  # "already running" (still starting up) is fine: the wait below decides.
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: Redis is not installed (apt-get install redis-server)" >&2
    return 1
  fi
  # Redis keeps nothing that must survive (DESIGN.md): no snapshots, no append-only file.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
}

ensure() {
  local name=$1 answers=$2 start=$3 deadline
  if "$answers"; then
    echo "services: $name answers on 127.0.0.1"
    return 0
  fi
  echo "services: starting $name"
  "$start"
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

ensure "PostgreSQL (port $PG_PORT)" postgres_answers start_postgres
ensure "Redis (port $REDIS_PORT)" redis_answers start_redis
