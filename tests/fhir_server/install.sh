#!/usr/bin/env bash
# Installs the loopback FHIR test server's pinned dependencies (Medplum engine) from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node -e "import('@medplum/fhir-router').then(() => console.log('fhir test server: dependencies ready'))"
