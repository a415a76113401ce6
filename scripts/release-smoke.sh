#!/usr/bin/env bash
# The binary `make run` starts (release preset: -O2, LTO, tcmalloc), which the ASan test suite never
# runs: serve on a free loopback port with a fresh data directory, check the probes, create a
# collection and a record and read it back, then SIGTERM and expect a clean exit 0.
# Usage: scripts/release-smoke.sh [path/to/basalt]   (default build/release/basalt)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/release/basalt}"
TOKEN="release-smoke-admin-token-0123456789abcdef"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/basalt-smoke.XXXXXX")"
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "release smoke: $*" >&2; tail -n 20 "$TMP/log" >&2 || true; exit 1; }

BASALT_AUTH__ADMIN_TOKEN="$TOKEN" "$BIN" serve --host 127.0.0.1 --port 0 --data-dir "$TMP/data" >"$TMP/log" 2>&1 &
PID=$!

# The "listening" log line says which port the kernel gave (bounded wait, no fixed sleep).
port=""
for _ in $(seq 1 300); do
  port="$(grep -m1 '"msg":"listening"' "$TMP/log" 2>/dev/null | sed -E 's/.*"port":([0-9]+).*/\1/' || true)"
  [ -n "$port" ] && break
  kill -0 "$PID" 2>/dev/null || fail "the server exited during start-up"
  sleep 0.1
done
[ -n "$port" ] || fail "no listening line within 30 s"
base="http://127.0.0.1:$port"

expect() {  # expect STATUS METHOD PATH [BODY]
  local want="$1" method="$2" path="$3" body="${4:-}" got
  local args=(-s -o "$TMP/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data "$body"); fi
  got="$(curl "${args[@]}" "$base$path")" || fail "$method $path: curl failed"
  [ "$got" = "$want" ] || fail "$method $path: status $got, expected $want: $(cat "$TMP/body")"
}

expect 200 GET /healthz
expect 200 GET /readyz
expect 201 POST /api/v1/collections '{"name":"smoke","fields":[{"name":"title","type":"text","required":true}]}'
expect 201 POST /api/v1/collections/smoke/records '{"title":"hello from the release build"}'
id="$(sed -E 's/.*"id":"([^"]+)".*/\1/' "$TMP/body")"
expect 200 GET "/api/v1/collections/smoke/records/$id"
grep -q 'hello from the release build' "$TMP/body" || fail "the record read back differs: $(cat "$TMP/body")"
expect 422 POST /api/v1/collections/smoke/records '{"title":42}'
expect 200 GET /metrics
grep -q '^basalt_build_info' "$TMP/body" || fail "/metrics has no basalt_build_info"

kill -TERM "$PID"
status=0
wait "$PID" || status=$?
PID=""
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
echo "release smoke: passed (port $port)"
