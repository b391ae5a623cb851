#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and Debian's Chromium are there for `make test`:
# start them when installed but stopped, install them with apt-get (as root) when missing,
# and fail with a clear message when neither is possible.
set -uo pipefail

say() { echo "[services] $*"; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }
apt_updated=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "$1 is missing and installing it needs root (apt-get install $*)."
  command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available to install it."
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; apt_updated=1; fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql postgresql-client; fi
  if [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    say "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started."
  # A freshly installed cluster only trusts local sockets: allow the test role over TCP.
  if ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1; then
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | tail -1)
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\)\S\+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  fi
fi
psql -h 127.0.0.1 -U postgres -tc 'select 1' >/dev/null 2>&1 \
  || die "PostgreSQL is up but user postgres cannot connect over TCP (trust auth expected)."

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/lethe-redis.log >/dev/null
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up || die "Redis is not reachable on 127.0.0.1:6379 and could not be started."
fi

if [ ! -x /usr/bin/chromium ]; then apt_install chromium chromium-driver; fi
[ -x /usr/bin/chromium ] || die "Debian's chromium is needed for the browser tests (/usr/bin/chromium)."

# WeasyPrint and the PDF tests need Pango and poppler's pdftotext/pdftoppm.
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; fi
command -v pdftotext >/dev/null || apt_install poppler-utils
say "PostgreSQL, Redis and Chromium are ready"
