#!/usr/bin/env bash
# Serve Lethe on the embedded default: SQLite and a file-system broker under var/, one web
# process, and two Celery workers laid out as in production (docs/jobs.md, "Safe forking"):
#   lethe-cpu@host  queue cpu (indexing, reports, housekeeping), with the beat scheduler
#   lethe-gpu@host  queue gpu (model work), one pool process
# Each worker runs in its own session, so Ctrl-C reaches this script alone, and the script stops
# everything it started within seconds: a warm shutdown first, then a cold one, then SIGKILL of
# each worker's whole process group (a hung job included). A second Ctrl-C escalates at once.
# Workers left behind by an earlier run that was killed are stopped before new ones start.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DATABASE_URL CELERY_BROKER_URL
PY=.venv/bin/python
export TOKENIZERS_PARALLELISM=false
VAR=${LETHE_VAR_DIR:-var}
RUN_DIR="$VAR/run"
STOP_GRACE=${LETHE_STOP_GRACE_SECONDS:-8}
LISTEN=${LETHE_LISTEN:-127.0.0.1:8000}
mkdir -p "$VAR/log" "$RUN_DIR"

say() { echo "$@" 2>/dev/null || true; }  # the terminal or a pipe reader may be gone already
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

any_alive() {  # any_alive PGID...: whether any of the process groups still has a process
  local pgid
  for pgid in "$@"; do group_alive "$pgid" && return 0; done
  return 1
}

wait_groups() {  # wait_groups TICKS ESCALATES PGID...: wait up to TICKS x 0.2 s for the groups to end
  local ticks=$1 escalates=$2 _
  shift 2
  for _ in $(seq 1 "$ticks"); do
    any_alive "$@" || return 0
    [ "$escalates" = 1 ] && [ "${ESCALATE:-0}" = 1 ] && return 1
    sleep 0.2
  done
  ! any_alive "$@"
}

stop_groups() {  # stop_groups PGID...: warm, then cold, then SIGKILL of each whole group
  local pgid
  for pgid in "$@"; do kill -TERM "$pgid" 2>/dev/null || true; done
  wait_groups $((STOP_GRACE * 5)) 1 "$@" && return 0
  for pgid in "$@"; do kill -QUIT "$pgid" 2>/dev/null || true; done
  wait_groups 10 0 "$@" && return 0
  for pgid in "$@"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
  wait_groups 25 0 "$@" && return 0
  say "a worker did not stop: process groups $*"
}

stop_leftovers() {  # workers of an earlier run on this var/ that was killed without cleanup
  local file pgid
  for file in "$RUN_DIR"/*.pgid; do
    [ -e "$file" ] || continue
    pgid=$(cat "$file")
    if group_alive "$pgid" && grep -qa celery "/proc/$pgid/cmdline" 2>/dev/null; then
      echo "Stopping a worker left behind by an earlier run (process group $pgid)..."
      stop_groups "$pgid"
    fi
    rm -f "$file"
  done
}

stop_leftovers
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo --queue-model

start_worker() {  # start_worker NAME QUEUES [EXTRA...]: a worker in its own session
  local name=$1 queues=$2
  shift 2
  setsid .venv/bin/celery -A compliance worker -Q "$queues" --concurrency 1 \
    --hostname "lethe-$name@%h" --loglevel INFO "$@" > "$VAR/log/worker-$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/worker-$name.pgid"
}
# The traps are set before the first worker starts, so no Ctrl-C can leave one behind.
cleanup() {
  trap 'ESCALATE=1; say " (stopping at once)"' INT TERM
  trap '' PIPE HUP
  say; say "Stopping Lethe..."
  local file groups=()
  if [ -n "${web:-}" ]; then kill -TERM "$web" 2>/dev/null || true; fi
  for file in "$RUN_DIR"/worker-*.pgid; do
    [ -e "$file" ] && groups+=("$(cat "$file")")
  done
  [ ${#groups[@]} -gt 0 ] && stop_groups "${groups[@]}"
  if [ -n "${web:-}" ] && kill -0 "$web" 2>/dev/null; then kill -KILL "$web" 2>/dev/null || true; fi
  rm -f "$RUN_DIR"/worker-*.pgid "$RUN_DIR/web.pid"
  say "Stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_worker cpu cpu -B --schedule "$VAR/celerybeat-schedule"
start_worker gpu gpu

echo
echo "Lethe is starting on http://$LISTEN  (worker logs: $VAR/log/worker-cpu.log, $VAR/log/worker-gpu.log)"
if [ -n "${LETHE_DEMO_PASSWORD:-}" ]; then
  password=$LETHE_DEMO_PASSWORD
elif [ -f "$VAR/demo_credentials" ]; then
  password=$(cat "$VAR/demo_credentials")
else
  password="(set when the users were first created; see seed_demo's output)"
fi
echo "Demo users: officer / auditor / engineer, password: $password"
echo "Press Ctrl-C to stop."
echo
$PY manage.py runserver "$LISTEN" --noreload &
web=$!
echo $web > "$RUN_DIR/web.pid"
wait $web
