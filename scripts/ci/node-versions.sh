#!/usr/bin/env bash
# Runs the unit and http suites and one real-Synapse end-to-end test (test/e2e/echo.test.ts)
# on other Node.js versions than the machine's, one after the other:
#
#   bash scripts/ci/node-versions.sh 22 24
#
# Each Node (scripts/services/ensure-node.sh, from the npm registry) gets its own copy of the
# project, cached outside the repository, so that better-sqlite3 is built for that Node while
# the repository's own node_modules stays built for the machine's Node. The copy's files are
# refreshed from the repository (git's tracked and untracked-not-ignored files) on every run;
# its node_modules is reinstalled with `npm ci` only when package-lock.json or the Node
# version changed, else only dist/ is rebuilt. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"

CACHE_DIR="${BRIDGEKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/matrix-bridgekit}"
E2E_TEST=test/e2e/echo.test.ts

log() { printf '[node-versions] %s\n' "$*" >&2; }
fail() {
  log "FAILED on Node $1: $2"
  exit 1
}

if [ $# -eq 0 ]; then
  log "usage: node-versions.sh MAJOR...   (e.g. 22 24)"
  exit 2
fi

# The Synapse root the e2e test runs, built once and cached (a no-op when it exists).
bash scripts/synapse/provision.sh >/dev/null

for major in "$@"; do
  started=$(date +%s)
  # One run at a time per Node (developers share the machine's cache); released when the
  # next Node's lock replaces this one, or at exit.
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/node-$major.lock"
  flock 9
  node="$(bash scripts/services/ensure-node.sh "$major")" || fail "$major" "could not install Node $major"
  bindir="$(dirname "$node")"
  nodedir="$(dirname "$bindir")" # holds include/node, for node-gyp
  version="$("$node" --version)"
  tree="$CACHE_DIR/tree-node-$major"
  log "Node $version: copying the project to $tree"

  mkdir -p "$tree"
  find "$tree" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    tar -C "$repo" --null --ignore-failed-read -T - -cf - | tar -C "$tree" -xf -

  stamp="$version $(sha256sum "$repo/package-lock.json" | cut -d' ' -f1)"
  (
    cd "$tree"
    export PATH="$bindir:$PATH" npm_config_nodedir="$nodedir"
    if [ "$(cat node_modules/.bridgekit-node-stamp 2>/dev/null || true)" != "$stamp" ]; then
      log "Node $version: npm ci (builds better-sqlite3 against $nodedir/include/node)"
      rm -rf node_modules
      npm ci --no-audit --no-fund >"$tree/npm-ci.log" 2>&1 || {
        tail -n 30 "$tree/npm-ci.log" >&2
        exit 1
      }
      echo "$stamp" >node_modules/.bridgekit-node-stamp
    else
      log "Node $version: node_modules is current; npm run build"
      npm run build --silent
    fi
  ) || fail "$major" "installing or building the project"

  # better-sqlite3 must load in this Node (built for its ABI), or every store test fails obscurely.
  (cd "$tree" && "$node" -e '
    const Database = require("better-sqlite3");
    const row = new Database(":memory:").prepare("select 1 as one").get();
    if (row.one !== 1) throw new Error("better-sqlite3 answered " + JSON.stringify(row));
  ') || fail "$major" "better-sqlite3 does not load in Node $version (see $tree/npm-ci.log)"

  log "Node $version: unit and http suites"
  (cd "$tree" && PATH="$bindir:$PATH" "$node" scripts/run-tests.js unit http) ||
    fail "$major" "unit or http tests"
  log "Node $version: $E2E_TEST against a real Synapse"
  (cd "$tree" && PATH="$bindir:$PATH" "$node" scripts/run-tests.js "$E2E_TEST") ||
    fail "$major" "$E2E_TEST"
  log "Node $version: passed ($(($(date +%s) - started)) s)"
done
