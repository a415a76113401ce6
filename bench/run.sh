#!/usr/bin/env bash
# make bench: measure Basalt against nginx (the ceiling) and Parse Server (the peer) on loopback,
# one workload at a time. Prints a table and writes one JSON object per line to
# bench/results/latest.jsonl.
#   BENCH_WORKLOADS  "healthz healthz_pinned get_by_id list_filtered create queue auth" (default: all; auth: bench/auth.sh)
#   BENCH_SYSTEMS    any of nginx basalt basalt-no-access-log basalt-sqlite basalt-postgres parse bullmq
#                    (default: all)
# See bench/lib.sh for the other tunables (BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
# BENCH_RECORDS...).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

ensure_basalt() {
  if [ -x "$BASALT_BIN" ]; then return 0; fi
  log "building the release preset ($BASALT_BIN missing)"
  (cd "$BENCH_ROOT" && cmake --preset release && cmake --build --preset release -j"$(nproc)")
}

# Parse Server peer: npm ci into bench/peers/parse when the lock file changed. Without node/npm, or
# when the install fails, the parse rows are skipped with a message (PARSE_OK=0).
PARSE_OK=0
ensure_parse() {
  local major minor
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "SKIPPING the parse rows: node/npm not found (apt-get install nodejs npm)"
    return 0
  fi
  IFS=. read -r major minor _ <<<"$(node --version | tr -d v)"
  if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
    log "SKIPPING the parse rows: Parse Server 9 needs Node >= 20.19 (found $(node --version))"
    return 0
  fi
  local stamp="$PARSE_DIR/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$PARSE_DIR/package-lock.json" -nt "$stamp" ]; then
    log "installing Parse Server (npm ci in ${PARSE_DIR#"$BENCH_ROOT"/})"
    if ! (cd "$PARSE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$BENCH_TMP/npm-ci.log" 2>&1); then
      tail -n 20 "$BENCH_TMP/npm-ci.log" >&2 || true
      log "SKIPPING the parse rows: npm ci failed (log above)"
      return 0
    fi
  fi
  PARSE_OK=1
}

# parse_case WORKLOAD PATH LUA: the Parse row of a data workload, when Parse could be installed.
parse_case() {
  system_selected parse || return 0
  if [ "$PARSE_OK" -ne 1 ]; then
    log "$1 / parse: skipped (Parse Server not installed, see above)"
    return 0
  fi
  bench_case "$1" parse "$2" start_parse -- -s "$3"
}

# ---------------------------------------------------------------------------------------------
# Workloads: functions named workload_<name>, listed in BENCH_WORKLOADS.

workload_healthz() {
  bench_case healthz nginx /healthz start_nginx
  # Production defaults: per_core I/O model, access log on (written to a file in the temp dir).
  bench_case healthz basalt /healthz start_basalt
  bench_case healthz basalt-no-access-log /healthz start_basalt BASALT_LOG__ACCESS=false
}

# The same with the servers pinned to the CPUs wrk does not use (BENCH_SERVER_CPUS, default every
# other CPU): unpinned, a server thread shares wrk's CPU and waits for wrk's time slices, which
# sets the p99 of nginx and Basalt alike. nginx runs one worker per CPU there, Basalt one I/O
# thread per CPU (its default follows the affinity mask).
workload_healthz_pinned() {
  local saved="$BENCH_SERVER_CPUS"
  [ -n "$BENCH_SERVER_CPUS" ] || BENCH_SERVER_CPUS="$("$PYTHON" "$BENCH_DIR/report.py" other-cpus "$BENCH_WRK_CPU")"
  if [ -z "$BENCH_SERVER_CPUS" ]; then
    log "healthz_pinned: no CPU is left besides wrk's ($BENCH_WRK_CPU); skipped"
  else
    log "healthz_pinned: servers on CPU $BENCH_SERVER_CPUS, wrk on CPU $BENCH_WRK_CPU"
    bench_case healthz_pinned nginx /healthz start_nginx
    bench_case healthz_pinned basalt /healthz start_basalt
  fi
  BENCH_SERVER_CPUS="$saved"
}

# Data API: BENCH_RECORDS seeded posts; each case starts its server (and database) afresh, seeds
# it, runs the workload's Lua script (bench/lua/<workload>.lua, which builds every request's path)
# and stops everything again.
data_workload() {  # WORKLOAD
  local wl="$1" lua="$BENCH_DIR/lua/$1.lua" records=/api/v1/collections/posts/records
  bench_case "$wl" nginx "$records" start_nginx_records -- -s "$lua"
  bench_case "$wl" basalt-sqlite "$records" start_basalt_records sqlite -- -s "$lua"
  bench_case "$wl" basalt-postgres "$records" start_basalt_records postgres -- -s "$lua"
  parse_case "$wl" /parse/classes/Post "$lua"
}

# GET /api/v1/collections/posts/records/{id} (Parse: /parse/classes/Post/{objectId}), random
# seeded ids.
workload_get_by_id() { data_workload get_by_id; }

# GET .../records?filter=views%20%3E%20X&sort=-views&limit=20 (Parse: where={"views":{"$gt":X}}
# &order=-views&limit=20), X random.
workload_list_filtered() { data_workload list_filtered; }

# Every acknowledged write is durable: SQLite commits with synchronous=FULL, the PostgreSQL
# clusters keep fsync and synchronous_commit on.
# POST .../records (Parse: POST /parse/classes/Post) with a JSON body. BENCH_CREATE_ADMIN=1 sends
# Basalt's admin token with each create (one audit log entry per request; other systems ignore it).
workload_create() {
  if [ "${BENCH_CREATE_ADMIN:-0}" = 1 ]; then export BENCH_CREATE_TOKEN="$BENCH_ADMIN_TOKEN"; fi
  data_workload create
  unset BENCH_CREATE_TOKEN
}

# Queue throughput (bench/queue/queue_bench.mjs): produce batches, claim + ack batches and end-to-end
# latency, messages/s in the rps column, on Basalt (SQLite, PostgreSQL) and BullMQ on a throwaway
# redis-server (the peer). BENCH_QUEUE_MESSAGES (50000), BENCH_QUEUE_BATCH (500),
# BENCH_QUEUE_PRODUCERS (4), BENCH_QUEUE_CONSUMERS (4), BENCH_REDIS_DURABLE (0; 1 = Redis AOF with
# appendfsync always, durable like Basalt). See bench/README.md.
BULLMQ_DIR="$BENCH_DIR/peers/bullmq"
queue_case() {  # SYSTEM
  local system="$1" rc=0
  system_selected "$system" || return 0
  log "queue / $system: starting"
  local qb_env=("QB_NAME=$system" "QB_MESSAGES=${BENCH_QUEUE_MESSAGES:-50000}" "QB_BATCH=${BENCH_QUEUE_BATCH:-500}"
    "QB_PRODUCERS=${BENCH_QUEUE_PRODUCERS:-4}" "QB_CONSUMERS=${BENCH_QUEUE_CONSUMERS:-4}")
  case "$system" in
    basalt-sqlite | basalt-postgres)
      # No rate limit (100/s per identity by default): the benchmark is one identity at full speed.
      local env_args=("BASALT_AUTH__ADMIN_TOKEN=$BENCH_ADMIN_TOKEN" "BASALT_LOG__ACCESS=false"
        "BASALT_RATE_LIMIT__ENABLED=false")
      if [ "$system" = basalt-postgres ]; then
        start_pg_cluster || rc=1
        env_args+=("BASALT_DATABASE__URL=$PG_URL")
      fi
      [ "$rc" -eq 0 ] && start_basalt "${env_args[@]}" || rc=1
      qb_env+=("QB_SYSTEM=basalt" "QB_URL=http://127.0.0.1:$SERVER_PORT" "QB_TOKEN=$BENCH_ADMIN_TOKEN")
      ;;
    bullmq)
      if [ ! -d "$BULLMQ_DIR/node_modules/bullmq" ]; then
        (cd "$BULLMQ_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$BENCH_TMP/npm-bullmq.log" 2>&1) ||
          { log "queue / bullmq: npm ci failed"; rc=1; }
      fi
      if [ "$rc" -eq 0 ]; then
        # A throwaway redis-server on a free loopback port, files only in the temp dir. By default
        # without persistence (BullMQ's usual setup; an acknowledged job is NOT durable, unlike
        # Basalt's); BENCH_REDIS_DURABLE=1 makes it comparable: AOF with fsync on every write.
        SERVER_PORT="$(free_port)"
        SERVER_LOG="$BENCH_TMP/redis-$SERVER_PORT.log"
        local persistence=(--appendonly no)
        [ "${BENCH_REDIS_DURABLE:-0}" = 1 ] && persistence=(--appendonly yes --appendfsync always)
        redis-server --bind 127.0.0.1 --port "$SERVER_PORT" --save "" "${persistence[@]}" \
          --dir "$BENCH_TMP" >"$SERVER_LOG" 2>&1 &
        SERVER_PID=$!
        BENCH_PIDS+=("$SERVER_PID")
        local i
        for ((i = 0; i < 100; i++)); do
          redis-cli -p "$SERVER_PORT" ping >/dev/null 2>&1 && break
          sleep 0.1
        done
        qb_env+=("QB_SYSTEM=bullmq" "QB_REDIS_PORT=$SERVER_PORT")
      fi
      ;;
  esac
  if [ "$rc" -eq 0 ]; then
    local pids
    pids="$(IFS=,; echo "$SERVER_PID${BENCH_EXTRA_PIDS[*]:+,${BENCH_EXTRA_PIDS[*]}}")"
    if env "${qb_env[@]}" "QB_PIDS=$pids" taskset -c "$BENCH_WRK_CPU" node "$BENCH_DIR/queue/queue_bench.mjs" >"$BENCH_TMP/queue-$system.jsonl"; then
      cat "$BENCH_TMP/queue-$system.jsonl" >>"$BENCH_RESULTS"
      "$PYTHON" - "$BENCH_TMP/queue-$system.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  {r['system']}: {r['workload']}: {r['rps']} msg/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
          f"{r['cpu_us_per_req']} us CPU/msg (client {r.get('client_cpu_us_per_req')}), {r['pss_mib']} MiB PSS")
PY
    else
      rc=1
    fi
  fi
  if [ "$rc" -ne 0 ]; then
    log "queue / $system: FAILED"
    BENCH_FAILURES=$((BENCH_FAILURES + 1))
  fi
  stop_server
}
workload_queue() {
  command -v node >/dev/null 2>&1 || { log "SKIPPING the queue workload: node not found"; return 0; }
  queue_case basalt-sqlite
  queue_case basalt-postgres
  queue_case bullmq
}

# shellcheck source=auth.sh
source "$(dirname "$0")/auth.sh"

read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-healthz healthz_pinned get_by_id list_filtered create queue auth}"

# Which systems does this run need?
wants_data() {
  local wl
  for wl in "${WORKLOADS[@]}"; do case "$wl" in healthz | healthz_pinned) ;; *) return 0 ;; esac; done
  return 1
}

main() {
  bench_init
  local wl
  for wl in "${WORKLOADS[@]}"; do
    declare -F "workload_$wl" >/dev/null || die "unknown workload: $wl (known: healthz healthz_pinned get_by_id list_filtered create queue auth)"
  done
  if system_selected basalt || system_selected basalt-no-access-log ||
    { wants_data && { system_selected basalt-sqlite || system_selected basalt-postgres; }; }; then
    ensure_basalt
    # Benchmark a private copy: a rebuild during the run must not swap or remove the binary.
    cp "$BASALT_BIN" "$BENCH_TMP/basalt"
    BASALT_BIN="$BENCH_TMP/basalt"
  fi
  if wants_data && system_selected parse; then ensure_parse; fi
  print_header
  if [ -x "$BASALT_BIN" ]; then echo "Basalt:  $("$BASALT_BIN" version 2>&1 | head -n1)"; echo; fi
  for wl in "${WORKLOADS[@]}"; do
    "workload_$wl"
  done
  echo
  "$PYTHON" "$BENCH_DIR/report.py" table "$BENCH_RESULTS"
  echo
  echo "Results: ${BENCH_RESULTS#"$BENCH_ROOT"/}"
  cp "$BENCH_RESULTS" "$(dirname "$BENCH_RESULTS")/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
  if [ "$BENCH_FAILURES" -ne 0 ]; then
    log "$BENCH_FAILURES case(s) failed"
    exit 1
  fi
}

main "$@"
