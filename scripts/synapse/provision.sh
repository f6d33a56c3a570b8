#!/usr/bin/env bash
# Builds (once) a Debian sid root folder with matrix-synapse in it, cached outside the
# repository, so that tests can run a real Synapse on loopback. Idempotent: a finished
# root is reused; a half-built one is finished or rebuilt.
#
# Debian 12 has no matrix-synapse package and no PyPI or Docker is reachable here, but sid
# packages Synapse and debootstrap can unpack it. Prints the root path on its last line.
set -euo pipefail

CACHE_DIR="${BRIDGEKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/matrix-bridgekit}"
ROOT="${BRIDGEKIT_SYNAPSE_ROOT:-$CACHE_DIR/synapse-root}"
MIRROR="${BRIDGEKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STAMP="$ROOT/.bridgekit-ready"

log() { printf '[synapse-provision] %s\n' "$*" >&2; }

if [ -f "$STAMP" ]; then
  log "reusing $ROOT"
  echo "$ROOT"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "must run as root (debootstrap and chroot need it)"
  exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

mkdir -p "$CACHE_DIR"
# A proc left mounted by an interrupted run would make rm fail; unmount it first.
umount "$ROOT/proc" 2>/dev/null || true

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  log "debootstrap sid with matrix-synapse into $ROOT (about 6 minutes, once)"
  rm -rf "$ROOT"
  # debootstrap ends with an error configuring python3-cryptography (it does not resolve
  # virtual packages); apt-get -f install below finishes the job.
  debootstrap --variant=minbase --include=matrix-synapse sid "$ROOT" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 || \
    log "debootstrap reported an error (expected); finishing with apt-get -f install"
fi

# The machine's clock can be ahead of the mirror's Release file.
echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99novalid"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
log "finishing the install inside the root"
chroot "$ROOT" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq' >"$CACHE_DIR/apt-fix.log" 2>&1

if ! chroot "$ROOT" python3 -c 'import synapse' 2>/dev/null; then
  log "synapse does not import inside $ROOT; see $CACHE_DIR/*.log"
  exit 1
fi
touch "$STAMP"
log "ready: $ROOT"
echo "$ROOT"
