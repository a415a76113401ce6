#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-test-cluster.sh start DIR   create + start a cluster in DIR; print its URL on stdout:
#                                          postgres://basalt:PASS@127.0.0.1:PORT/basalt_test
#   scripts/pg-test-cluster.sh stop DIR    stop it (fast shutdown) and remove DIR
#   scripts/pg-test-cluster.sh url DIR     print the URL of a running cluster in DIR
#
# The server listens on 127.0.0.1 only (a free port picked at start) and keeps its unix socket
# inside DIR. fsync stays on (durability tests), max_connections=200, shared_buffers 128 MB (PostgreSQL's
# own default; it sizes wal_buffers at 4 MB: with 32 MB, 1 MB of WAL buffers filled under a stream
# of commits and made backends wait for WAL writes, the PostgreSQL create bench's p99 rose from
# about 6.5 to 10 ms) and wal_init_zero off (a fresh cluster otherwise writes 16 MB of zeros for each
# new WAL segment, about twice a second under the create bench, and every commit waits behind that
# write; a long-running cluster recycles old segments instead, which this setting stands in for:
# the create bench's p99 went from 10.6-11.3 ms to 5.3-5.9 ms, the same as on a warmed cluster
# with the default). PostgreSQL refuses to run as
# root, so when run as root every server command runs as the `postgres` user (runuser) and DIR is
# chowned to it. `start` on a DIR whose cluster is already running just prints the URL again; a
# stale DIR (not running) is wiped and recreated. Every step is bounded in time.
# Logs: DIR/server.log. Environment: PG_BIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
DB_NAME=basalt_test
DB_USER=basalt

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pick_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_url() {  # DIR
  local dir="$1"
  [ -f "$dir/url" ] || die "no cluster in $dir"
  cat "$dir/url"
}

running() {  # DIR
  [ -d "$1/data" ] && as_pg timeout 10 "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

stop_cluster() {  # DIR
  local dir="$1"
  if running "$dir"; then
    as_pg timeout 60 "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_pg timeout 30 "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
}

start_cluster() {  # DIR
  local dir="$1"
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (scripts/install-deps.sh installs them)"
  if running "$dir" && [ -f "$dir/url" ]; then
    print_url "$dir"
    return 0
  fi
  stop_cluster "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
    rm -rf "$dir"
    die "the postgres user cannot reach $(dirname "$dir"); use a DIR under /tmp"
  fi
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
  chmod 700 "$dir"

  local password
  password="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$password" >"$dir/pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/pwfile"; fi
  chmod 600 "$dir/pwfile"

  # The bootstrap superuser is the test role itself; local socket connections use trust (only
  # the owner can reach DIR), TCP connections need the password.
  as_pg timeout 120 "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$dir/pwfile" -E UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  local port attempt
  for attempt in 1 2 3 4 5; do
    port="$(pick_port)"
    cat >"$dir/data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
max_connections = 200
shared_buffers = 128MB
wal_init_zero = off
log_min_messages = warning
logging_collector = off
EOF
    if as_pg timeout 60 "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    # Most likely somebody took the port between pick and bind: try another one.
    if [ "$attempt" -eq 5 ]; then tail -n 30 "$dir/server.log" >&2 || true; die "server did not start"; fi
  done

  as_pg timeout 30 "$PG_BIN/psql" -h "$dir" -p "$port" -U "$DB_USER" -d postgres -v ON_ERROR_STOP=1 -qAt \
    -c "CREATE DATABASE $DB_NAME" >/dev/null || die "CREATE DATABASE failed"
  rm -f "$dir/pwfile"
  local url="postgres://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
  printf '%s\n' "$url" >"$dir/url"
  printf '%s\n' "$url"
}

case "${1:-}" in
  start) [ -n "${2:-}" ] || die "usage: $0 start DIR"; start_cluster "$2" ;;
  stop)
    [ -n "${2:-}" ] || die "usage: $0 stop DIR"
    if [ -d "$2" ]; then stop_cluster "$2"; rm -rf "$2"; fi
    ;;
  url) [ -n "${2:-}" ] || die "usage: $0 url DIR"; print_url "$2" ;;
  *) die "usage: $0 start|stop|url DIR" ;;
esac
