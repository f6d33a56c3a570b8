#!/usr/bin/env bash
# Every test, with every real service they need. Run as root on a fresh machine of this kind:
# it starts PostgreSQL and Redis if they are down, builds (once, cached outside the repository)
# the Synapse root, and installs ngircd and prosody from Debian if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export BRIDGEKIT_TEST_POSTGRES_URL="${BRIDGEKIT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export BRIDGEKIT_TEST_REDIS_URL="${BRIDGEKIT_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

echo "== services: PostgreSQL and Redis"
bash scripts/services/ensure-services.sh
echo "== services: Synapse root (cached after the first run)"
bash scripts/synapse/provision.sh >/dev/null
echo "== services: ngircd and prosody"
bash scripts/services/ensure-ngircd.sh >/dev/null
bash scripts/services/ensure-prosody.sh >/dev/null
echo "== build (dist/ for the bin and create-bridge tests)"
npm run build --silent

# One runner for every suite, so the run ends with one summary of all tests.
exec node scripts/run-tests.js ${BRIDGEKIT_SUITES:-unit http store e2e examples e2e-examples reliability create-bridge}
