#!/usr/bin/env bash
# Serve Lethe on the embedded default: SQLite and a file-system broker under var/, one web
# process, one Celery worker on both queues with the beat scheduler. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DATABASE_URL CELERY_BROKER_URL
PY=.venv/bin/python
export TOKENIZERS_PARALLELISM=false
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo --queue-model

mkdir -p var/log
.venv/bin/celery -A compliance worker -Q cpu,gpu --concurrency 2 -B \
  --schedule var/celerybeat-schedule --hostname "lethe-embedded@%h" \
  --loglevel INFO > var/log/worker.log 2>&1 &
worker=$!
cleanup() {
  echo; echo "Stopping the worker..."
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo
echo "Lethe is starting on http://127.0.0.1:8000  (worker log: var/log/worker.log)"
if [ -n "${LETHE_DEMO_PASSWORD:-}" ]; then
  password=$LETHE_DEMO_PASSWORD
elif [ -f var/demo_credentials ]; then
  password=$(cat var/demo_credentials)
else
  password="(set when the users were first created; see seed_demo's output)"
fi
echo "Demo users: officer / auditor / engineer, password: $password"
echo "Press Ctrl-C to stop."
echo
$PY manage.py runserver 127.0.0.1:8000 --noreload
