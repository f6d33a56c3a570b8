#!/usr/bin/env bash
# Makes sure the prosody XMPP server is installed (the Debian package), so that tests can run
# their own prosody process on loopback. Idempotent and quiet: installs only when missing.
# Does not start or enable the system service (tests run prosody in the foreground with a
# generated config). Prints the prosody binary path on its last line.
set -euo pipefail

log() { printf '[ensure-prosody] %s\n' "$*" >&2; }

if ! command -v prosody >/dev/null 2>&1 || ! command -v prosodyctl >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "prosody is not installed and installing it needs root (apt-get install prosody)"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "prosody is not installed and there is no apt-get to install it with"
    exit 1
  fi
  log "installing the prosody package"
  apt-get update -qq >/dev/null
  # policy-rc.d 101 keeps the package's post-install from starting the system service.
  policy="/usr/sbin/policy-rc.d"
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prosody >/dev/null || status=$?
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$status" != 0 ]; then
    log "apt-get install prosody failed (exit $status)"
    exit "$status"
  fi
fi

command -v prosody
