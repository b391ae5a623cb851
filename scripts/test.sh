#!/usr/bin/env bash
# The whole suite on PostgreSQL and Redis, with a real Celery worker and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap_venv.sh
scripts/ensure_services.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lethe_test}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
export LETHE_SECRET_KEY=${LETHE_SECRET_KEY:-lethe-test-secret-key-not-for-production-use-0123456789}
export LETHE_VAR_DIR=${LETHE_VAR_DIR:-$PWD/var/test}
export LETHE_DATA_DIR=${LETHE_DATA_DIR:-$LETHE_VAR_DIR/data}
export TOKENIZERS_PARALLELISM=false
rm -rf "$LETHE_VAR_DIR"
mkdir -p "$LETHE_VAR_DIR" test-artifacts
# A stale queue from an interrupted run must not feed old tasks to this run's worker.
redis-cli -u "$CELERY_BROKER_URL" flushdb >/dev/null

# The fault suites (tests/faults, marker `faults`) are `make test-faults`: they kill workers and
# restart services for many minutes. Left out here unless the arguments choose tests by marker or
# name the fault suites.
select=(-m "not faults")
for arg in "$@"; do
  case $arg in -m|-m*|--markexpr*|tests/faults|tests/faults/*) select=() ;; esac
done

set +e
.venv/bin/python -m pytest "${select[@]}" "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
  echo "pytest collected no tests: that is a failure of the suite, not a pass." >&2
  exit 1
fi
exit $status
