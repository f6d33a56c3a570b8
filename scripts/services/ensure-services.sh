#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on loopback for the store tests. Idempotent: a
# service that already answers is left alone; one that is installed but stopped is started;
# one that is not installed is installed from Debian (needs root) and set up with trust auth
# on loopback and a `test` database. Waits until both answer; prints what it did.
#   PostgreSQL: 127.0.0.1:5432, user postgres, database test
#   Redis:      127.0.0.1:6379 (no persistence: a test server)
set -euo pipefail

log() { printf '[ensure-services] %s\n' "$*"; }
die() { printf '[ensure-services] ERROR: %s\n' "$*" >&2; exit 1; }

pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() { # name, check-function, seconds
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    if "$2"; then return 0; fi
    sleep 0.2
  done
  die "$1 did not answer within $3 s"
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "$* not installed, and installing needs root: apt-get install -y $*"
  command -v apt-get >/dev/null 2>&1 || die "$* not installed and there is no apt-get"
  log "installing $* (apt-get)"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

# --- PostgreSQL
if pg_answers; then
  log "PostgreSQL already answers on 127.0.0.1:5432"
else
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    fresh_pg=1
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ "${fresh_pg:-0}" = 1 ]; then
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    log "PostgreSQL $version: trust auth on loopback ($hba)"
    {
      echo "local all all trust"
      echo "host all all 127.0.0.1/32 trust"
      echo "host all all ::1/128 trust"
    } >"$hba.bridgekit"
    cat "$hba" >>"$hba.bridgekit"
    mv "$hba.bridgekit" "$hba"
  fi
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_answers 30
  log "PostgreSQL started"
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atc "select 1" >/dev/null 2>&1; then
  if psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1" >/dev/null 2>&1; then
    log "creating database test"
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" >/dev/null
  else
    die "PostgreSQL answers but user postgres cannot log in over 127.0.0.1 without a password (set trust auth for loopback in pg_hba.conf)"
  fi
fi

# --- Redis
if redis_answers; then
  log "Redis already answers on 127.0.0.1:6379"
else
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  log "starting Redis (no persistence)"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_answers 30
  log "Redis started"
fi

log "ready: postgres://postgres@127.0.0.1:5432/test redis://127.0.0.1:6379"
