#!/usr/bin/env bash
# Set up healthhut and run its main job on embedded defaults: replay the bundled sample capture into a
# local store, then show the demo resident's records.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/healthhut demo "$@"
