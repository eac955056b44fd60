#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite: ruff, mypy, import-linter, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "== ruff"; .venv/bin/ruff check healthhut tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== pytest"
set +e
.venv/bin/pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi
exit "$status"
