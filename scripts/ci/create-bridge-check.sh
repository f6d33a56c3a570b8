#!/usr/bin/env bash
# The full create-bridge check, one command (npm run test:create-bridge): builds dist/ (the
# create-bridge bin runs from it), then scaffolds projects with the real bin, npm-installs
# one (better-sqlite3 may build from source: a few minutes), type-checks it and runs its own
# tests, and answers the interactive prompts through a pseudo-terminal.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v script >/dev/null 2>&1; then
  echo "create-bridge-check: installing util-linux for \`script\` (the terminal test)"
  apt-get update -qq && apt-get install -y -qq util-linux >/dev/null
fi

echo "create-bridge-check: npm run build"
npm run build --silent
node scripts/run-tests.js create-bridge
