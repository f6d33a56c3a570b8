#!/usr/bin/env bash
# Makes sure the ngircd IRC server binary is installed (Debian package `ngircd`), for tests
# that run their own ngircd process. Idempotent and quiet; prints the binary's path on its
# last line. The package's system service is stopped after install: tests start their own
# ngircd in the foreground on a free port with a generated config.
set -euo pipefail

log() { printf '[ensure-ngircd] %s\n' "$*" >&2; }

find_ngircd() {
  command -v ngircd 2>/dev/null || { [ -x /usr/sbin/ngircd ] && echo /usr/sbin/ngircd; } || true
}

bin="$(find_ngircd)"
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "ngircd is not installed and installing it needs root: run 'apt-get install ngircd' as root"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "ngircd is not installed and apt-get is not available to install it"
    exit 1
  fi
  log "installing the Debian package ngircd"
  # Another apt-get may be running (other service scripts): wait for the dpkg lock.
  status=0
  {
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq ngircd
  } >/tmp/ensure-ngircd.log 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    log "apt-get install ngircd failed (exit $status); see /tmp/ensure-ngircd.log"
    exit 1
  fi
  # The package may have started its system service on port 6667; tests never use it.
  if command -v service >/dev/null 2>&1; then service ngircd stop >/dev/null 2>&1 || true; fi
  bin="$(find_ngircd)"
  if [ -z "$bin" ]; then
    log "the ngircd package installed but no ngircd binary was found"
    exit 1
  fi
fi
echo "$bin"
