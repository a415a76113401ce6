# shellcheck shell=bash
# Helpers for bench/run.sh: start/stop servers, measure them with wrk, record results.
#
# A workload is a shell function that, for each system, calls
#   bench_case <workload> <system> <path> <start-function> [start args...] [-- wrk args...]
# which starts the server, warms it up, measures it and stops it again. A start function must set
#   SERVER_PID   the server's main process (CPU and memory are summed over it and all its descendants)
#   SERVER_PORT  the loopback port it listens on
# and may append more PIDs to BENCH_EXTRA_PIDS (e.g. a database's postmaster) whose CPU, with all
# their descendants', counts as the system's. CPU of a process tree includes children that exit
# during the window (the root's cutime/cstime), e.g. PostgreSQL backends.
#
# Data-API workloads (get_by_id, list_filtered, create): start functions seed BENCH_RECORDS records
# (bench/seed.py) and export BENCH_API and BENCH_IDS_FILE for the wrk Lua scripts in bench/lua/.
# PostgreSQL-backed systems run on a throwaway cluster (scripts/pg-test-cluster.sh) per case, under
# /tmp, stopped with the case and again by the EXIT trap.
#
# Tunables (environment): BENCH_DURATION (15), BENCH_WARMUP (3), BENCH_CONNECTIONS (64),
# BENCH_THREADS (2), BENCH_WRK_CPU (1), BENCH_SYSTEMS (space-separated filter, default all),
# BASALT_BIN (build/release/basalt), BENCH_RESULTS (bench/results/latest.jsonl),
# BENCH_RECORDS (10000 seeded records), BENCH_SEED_TIMEOUT (300 s), BENCH_VIEWS_MAX (100000).

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="$BENCH_ROOT/bench"
BENCH_DURATION="${BENCH_DURATION:-15}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_WRK_CPU="${BENCH_WRK_CPU:-1}"
# Empty: servers are not pinned. A CPU list (taskset -c syntax): nginx, Basalt, Parse and the
# PostgreSQL cluster run only there (nginx with one worker per CPU of it; Basalt's default of one
# I/O thread per usable CPU follows by itself).
BENCH_SERVER_CPUS="${BENCH_SERVER_CPUS:-}"
BENCH_SYSTEMS="${BENCH_SYSTEMS:-}"
BASALT_BIN="${BASALT_BIN:-$BENCH_ROOT/build/release/basalt}"
BENCH_RESULTS="${BENCH_RESULTS:-$BENCH_DIR/results/latest.jsonl}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
PYTHON="${PYTHON:-python3}"
BENCH_RECORDS="${BENCH_RECORDS:-10000}"
BENCH_SEED_TIMEOUT="${BENCH_SEED_TIMEOUT:-300}"
export BENCH_VIEWS_MAX="${BENCH_VIEWS_MAX:-100000}"
PG_CLUSTER="$BENCH_ROOT/scripts/pg-test-cluster.sh"
PARSE_DIR="$BENCH_DIR/peers/parse"
# Fixed admin token for the benchmark's throwaway Basalt instances (loopback only).
BENCH_ADMIN_TOKEN="bench-admin-token-0123456789abcdefghijklmnop"
CLK_TCK="$(getconf CLK_TCK)"

BENCH_TMP=""
BENCH_PIDS=()        # every server we started, for cleanup
BENCH_EXTRA_PIDS=()  # extra processes whose CPU belongs to the current system (databases)
BENCH_PG_DIRS=()     # every PostgreSQL cluster directory we created, for cleanup
PG_DIR=""            # the current case's cluster
PG_URL=""
BENCH_FAILURES=0
SERVER_PID=""
SERVER_PORT=""
SERVER_LOG=""

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_init() {
  for tool in wrk taskset curl getconf "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (run scripts/install-deps.sh)"
  done
  BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/basalt-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # 64+ keep-alive connections plus the server's own files: raise the soft fd limit.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  mkdir -p "$(dirname "$BENCH_RESULTS")"
  : >"$BENCH_RESULTS"
}

# All descendants of a PID, the PID first (processes only; threads are inside /proc/<pid>/stat).
proc_tree() {
  local root="$1"
  [ -d "/proc/$root" ] || return 0
  ps -e -o pid=,ppid= | awk -v root="$root" '
    { kids[$2] = kids[$2] " " $1 }
    END {
      n = 1; q[1] = root; out = root
      for (i = 1; i <= n; i++) {
        c = split(kids[q[i]], a, " ")
        for (j = 1; j <= c; j++) { q[++n] = a[j]; out = out " " a[j] }
      }
      print out
    }'
}

# Sum of utime+stime clock ticks over the given PIDs (all threads; fields 14 and 15 of
# /proc/<pid>/stat, counted after the ")" that ends the command name).
cpu_ticks() {
  local total=0 pid rest
  for pid in "$@"; do
    rest="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    rest="${rest##*) }"
    # shellcheck disable=SC2086
    set -- $rest
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# CPU clock ticks of whole process trees: utime+stime of every live process under each root, plus
# each root's cutime+cstime (children it has already reaped, e.g. PostgreSQL backends that exited).
# Compare a value taken before a window with one taken after: processes born in between count in
# full, processes that died in between are in their parent's cutime.
tree_cpu_ticks() {
  local root rest live=0 reaped=0
  # shellcheck disable=SC2046
  live="$(cpu_ticks $(for root in "$@"; do proc_tree "$root"; done))"
  for root in "$@"; do
    rest="$(cat "/proc/$root/stat" 2>/dev/null)" || continue
    rest="${rest##*) }"
    # shellcheck disable=SC2086
    set -- $rest
    reaped=$((reaped + ${14} + ${15}))
  done
  echo $((live + reaped))
}

# Memory of the given PIDs in KiB: the sum of their PSS (/proc/<pid>/smaps_rollup), where a page
# shared by n processes counts 1/n in each, so PostgreSQL's shared buffers or nginx's shared pages
# count once in the sum, not once per process (VmRSS, where smaps_rollup cannot be read).
mem_kib() {
  local total=0 pid kb
  for pid in "$@"; do
    kb="$(awk '/^Pss:/ { print $2; exit }' "/proc/$pid/smaps_rollup" 2>/dev/null || true)"
    [ -n "$kb" ] || kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# user+nice+system clock ticks of the whole machine, from the first line of /proc/stat. irq and
# softirq are left out: loopback TCP is processed there (about a third of the machine at 150k req/s)
# and belongs to no process, so it is neither server CPU nor noise.
machine_busy_ticks() {
  awk 'NR == 1 { print $2 + $3 + $4; exit }' /proc/stat
}

# CPU seconds used so far by this shell's finished children (wrk), from the `times` builtin. It must
# run in this shell (a $(...) subshell has no children of its own), so it writes to a file.
children_cpu_seconds() {
  times >"$BENCH_TMP/times.txt"
  awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%.3f\n", t }' "$BENCH_TMP/times.txt"
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL TIMEOUT_S PID: wait until URL answers 2xx, failing early if PID dies.
wait_http() {
  local url="$1" timeout="$2" pid="$3" i
  for ((i = 0; i < timeout * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "server (pid $pid) exited before answering $url"; return 1; }
    sleep 0.1
  done
  log "timed out after ${timeout}s waiting for $url"
  return 1
}

system_selected() {
  [ -z "$BENCH_SYSTEMS" ] && return 0
  case " $BENCH_SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------------------------------------
# Servers

# server_pin: the command prefix that runs a server on BENCH_SERVER_CPUS (nothing when unset).
server_pin() {
  [ -n "$BENCH_SERVER_CPUS" ] && printf '%s\n' taskset -c "$BENCH_SERVER_CPUS"
  return 0
}

start_nginx() {
  local prefix="$BENCH_TMP/nginx" workers=auto
  local -a pin
  mapfile -t pin < <(server_pin)
  mkdir -p "$prefix"
  SERVER_PORT="$(free_port)"
  [ -n "$BENCH_SERVER_CPUS" ] && workers="$(taskset -c "$BENCH_SERVER_CPUS" nproc)"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$SERVER_PORT|g" -e "s|@WORKERS@|$workers|g" \
    "$BENCH_DIR/nginx.conf.template" >"$prefix/nginx.conf"
  SERVER_LOG="$prefix/stderr.log"
  "${pin[@]}" "$NGINX_BIN" -p "$prefix" -c "$prefix/nginx.conf" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  BENCH_PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$SERVER_PORT/healthz" 10 "$SERVER_PID" || {
    cat "$SERVER_LOG" "$prefix/error.log" >&2 2>/dev/null || true
    return 1
  }
}

# start_basalt [VAR=value...]: Basalt on 127.0.0.1 port 0, environment overrides applied; the
# chosen port comes from the JSON log line with "msg":"listening" and "port":<n> on stdout.
start_basalt() {
  [ -x "$BASALT_BIN" ] || { log "no Basalt binary at $BASALT_BIN"; return 1; }
  local data_dir i line
  local -a pin
  mapfile -t pin < <(server_pin)
  data_dir="$(mktemp -d "$BENCH_TMP/basalt-data.XXXXXX")"
  SERVER_LOG="$data_dir.log"
  "${pin[@]}" env "$@" "$BASALT_BIN" serve --host 127.0.0.1 --port 0 --data-dir "$data_dir" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  BENCH_PIDS+=("$SERVER_PID")
  SERVER_PORT=""
  for ((i = 0; i < 200; i++)); do
    line="$(grep -m1 '"msg": *"listening"' "$SERVER_LOG" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      SERVER_PORT="$(printf '%s' "$line" | grep -oE '"port": *[0-9]+' | grep -oE '[0-9]+$' || true)"
      [ -n "$SERVER_PORT" ] && break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$SERVER_PORT" ]; then
    log "Basalt did not log a \"listening\" line with a port; log follows"
    tail -n 20 "$SERVER_LOG" >&2 || true
    return 1
  fi
  wait_http "http://127.0.0.1:$SERVER_PORT/healthz" 10 "$SERVER_PID" || {
    tail -n 20 "$SERVER_LOG" >&2 || true
    return 1
  }
}

# start_pg_cluster: a throwaway PostgreSQL cluster for the current case (fsync and
# synchronous_commit on: an acknowledged write is durable). Sets PG_DIR and PG_URL; its postmaster
# (and so every backend) counts as the system's CPU.
start_pg_cluster() {
  [ -x "$PG_CLUSTER" ] || { log "missing $PG_CLUSTER"; return 1; }
  # Under /tmp, not BENCH_TMP: the postgres user must be able to reach it.
  PG_DIR="$(mktemp -d /tmp/basalt-bench-pg.XXXXXX)"
  BENCH_PG_DIRS+=("$PG_DIR")
  PG_URL="$(timeout 200 "$PG_CLUSTER" start "$PG_DIR")" || { log "could not start a PostgreSQL cluster in $PG_DIR"; return 1; }
  local pm
  pm="$(head -n1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)"
  [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null || { log "no postmaster for $PG_DIR"; return 1; }
  BENCH_EXTRA_PIDS+=("$pm")
  if [ -n "$BENCH_SERVER_CPUS" ]; then
    # The postmaster and its children now; backends forked later inherit the mask.
    local p
    for p in $pm $(pgrep -P "$pm" || true); do taskset -a -p -c "$BENCH_SERVER_CPUS" "$p" >/dev/null || true; done
  fi
  log "PostgreSQL cluster in $PG_DIR (postmaster $pm)"
}

stop_pg_cluster() {  # DIR (default: the current case's)
  local dir="${1:-$PG_DIR}"
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  timeout 120 "$PG_CLUSTER" stop "$dir" >/dev/null 2>&1 || log "could not stop the PostgreSQL cluster in $dir"
  if [ "$dir" = "$PG_DIR" ]; then PG_DIR=""; PG_URL=""; fi
}

# seed_records KIND BASE_URL: seed BENCH_RECORDS records (bench/seed.py) and export BENCH_IDS_FILE.
seed_records() {
  local kind="$1" base="$2" rc=0
  BENCH_IDS_FILE="$BENCH_TMP/ids-$kind-$SERVER_PORT.txt"
  export BENCH_IDS_FILE
  case "$kind" in
    basalt) timeout "$BENCH_SEED_TIMEOUT" "$PYTHON" "$BENCH_DIR/seed.py" basalt "$base" "$BENCH_ADMIN_TOKEN" "$BENCH_RECORDS" "$BENCH_IDS_FILE" || rc=$? ;;
    parse) timeout "$BENCH_SEED_TIMEOUT" "$PYTHON" "$BENCH_DIR/seed.py" parse "$base" "$BENCH_RECORDS" "$BENCH_IDS_FILE" || rc=$? ;;
    fake) "$PYTHON" "$BENCH_DIR/seed.py" fake "$BENCH_RECORDS" "$BENCH_IDS_FILE" || rc=$? ;;
  esac
  case "$rc" in
    0) return 0 ;;
    3) log "records API not available in $BASALT_BIN (the data-API routes are missing); this case cannot run" ;;
    124) log "seeding did not finish within ${BENCH_SEED_TIMEOUT}s" ;;
    *) log "seeding failed (exit $rc)" ;;
  esac
  return 1
}

# start_nginx_records: the nginx ceiling for the data workloads (`return 200` for /api/ and
# /parse/), driven by the same Lua scripts as Basalt with random ids.
start_nginx_records() {
  start_nginx || return 1
  export BENCH_API=basalt
  seed_records fake ""
}

# start_basalt_records sqlite|postgres: Basalt with an admin token (to create the collection), on
# its embedded SQLite or on a throwaway PostgreSQL cluster, seeded with BENCH_RECORDS posts.
start_basalt_records() {
  local backend="$1"
  # wrk is one identity (127.0.0.1) sending far more than a client should: raise the default rate
  # so the limiter runs (its cost is measured) without refusing the load.
  local env_args=("BASALT_AUTH__ADMIN_TOKEN=$BENCH_ADMIN_TOKEN" "BASALT_RATE_LIMIT__DEFAULT=1000000000/s 1000000")
  if [ "$backend" = postgres ]; then
    start_pg_cluster || return 1
    env_args+=("BASALT_DATABASE__URL=$PG_URL")
  fi
  if ! start_basalt "${env_args[@]}"; then
    if grep -q 'unknown setting' "$SERVER_LOG" 2>/dev/null; then
      log "records API not available in $BASALT_BIN: it does not know auth.admin_token or database.url (rebuild the release preset)"
    fi
    return 1
  fi
  export BENCH_API=basalt
  seed_records basalt "http://127.0.0.1:$SERVER_PORT"
}

# start_parse: Parse Server 9 (bench/peers/parse, installed by run.sh) on a throwaway PostgreSQL
# cluster, seeded with BENCH_RECORDS Post objects.
start_parse() {
  local -a pin
  mapfile -t pin < <(server_pin)
  [ -d "$PARSE_DIR/node_modules/parse-server" ] || { log "Parse Server is not installed in $PARSE_DIR"; return 1; }
  start_pg_cluster || return 1
  SERVER_PORT="$(free_port)"
  SERVER_LOG="$BENCH_TMP/parse-$SERVER_PORT.log"
  PORT="$SERVER_PORT" PARSE_DATABASE_URI="$PG_URL" NODE_ENV=production \
    "${pin[@]}" node "$PARSE_DIR/server.js" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  BENCH_PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$SERVER_PORT/parse/health" 60 "$SERVER_PID" || {
    tail -n 20 "$SERVER_LOG" >&2 || true
    return 1
  }
  export BENCH_API=parse
  seed_records parse "http://127.0.0.1:$SERVER_PORT"
}

stop_pid() {
  local pid="$1" i tree
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  tree="$(proc_tree "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 10s; killing"
    # shellcheck disable=SC2086
    kill -KILL $tree 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  if [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ]; then
    # Access logs at ~170k req/s grow by hundreds of MiB per run; keep only the tail.
    local size
    size="$(stat -c %s "$SERVER_LOG")"
    if [ "$size" -gt 1048576 ]; then
      log "server log was $((size / 1048576)) MiB; keeping its last 200 lines"
      tail -n 200 "$SERVER_LOG" >"$SERVER_LOG.tail" && mv "$SERVER_LOG.tail" "$SERVER_LOG"
    fi
  fi
  SERVER_PID=""
  SERVER_PORT=""
  SERVER_LOG=""
  BENCH_EXTRA_PIDS=()
  stop_pg_cluster
}

bench_cleanup() {
  local rc=$? pid dir
  trap - EXIT INT TERM
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  for dir in "${BENCH_PG_DIRS[@]}"; do stop_pg_cluster "$dir"; done
  if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
    if [ "$rc" -ne 0 ] || [ "$BENCH_FAILURES" -ne 0 ]; then
      log "keeping logs in $BENCH_TMP"
    else
      rm -rf "$BENCH_TMP"
    fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Measurement

run_wrk() {  # run_wrk DURATION_S URL [extra wrk args...]
  local dur="$1" url="$2"
  shift 2
  timeout --kill-after=5 "$((dur + 30))" \
    taskset -c "$BENCH_WRK_CPU" wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d"${dur}s" "$@" "$url"
}

# measure WORKLOAD SYSTEM PATH [extra wrk args...]: warm up, then one measured wrk run against the
# running server; CPU is counted over the measured window only.
measure() {
  local workload="$1" system="$2" path="$3" url pids pid before after mem out
  shift 3
  url="http://127.0.0.1:$SERVER_PORT$path"
  out="$BENCH_TMP/wrk-$workload-$system.txt"
  if [ "$BENCH_WARMUP" -gt 0 ]; then
    run_wrk "$BENCH_WARMUP" "$url" "$@" >/dev/null || { log "warm-up failed for $system"; return 1; }
  fi
  local roots=("$SERVER_PID" "${BENCH_EXTRA_PIDS[@]}")
  local m_before m_after w_before w_after t_before t_after other
  m_before="$(machine_busy_ticks)"
  children_cpu_seconds >"$BENCH_TMP/w_before.txt"
  w_before="$(cat "$BENCH_TMP/w_before.txt")"
  t_before="$(date +%s.%N)"
  before="$(tree_cpu_ticks "${roots[@]}")"
  run_wrk "$BENCH_DURATION" "$url" --latency "$@" >"$out" || { log "wrk failed for $system"; cat "$out" >&2; return 1; }
  after="$(tree_cpu_ticks "${roots[@]}")"
  t_after="$(date +%s.%N)"
  children_cpu_seconds >"$BENCH_TMP/w_after.txt"
  w_after="$(cat "$BENCH_TMP/w_after.txt")"
  m_after="$(machine_busy_ticks)"
  # shellcheck disable=SC2207
  pids=($(for pid in "${roots[@]}"; do proc_tree "$pid"; done))
  mem="$(mem_kib "${pids[@]}")"
  kill -0 "$SERVER_PID" 2>/dev/null || { log "$system died during the run"; return 1; }
  # CPU used by anything other than the server and wrk, as % of the machine: a noise indicator.
  other="$(awk -v mb="$((m_after - m_before))" -v sv="$((after - before))" -v hz="$CLK_TCK" \
    -v wb="$w_before" -v wa="$w_after" -v tb="$t_before" -v ta="$t_after" -v n="$(nproc)" \
    'BEGIN { o = (mb - sv) / hz - (wa - wb); if (o < 0) o = 0; printf "%.1f\n", 100 * o / ((ta - tb) * n) }')"
  "$PYTHON" "$BENCH_DIR/report.py" record "$out" "$workload" "$system" \
    "$((after - before))" "$CLK_TCK" "$mem" "$BENCH_RESULTS" "$other"
}

# bench_case WORKLOAD SYSTEM PATH START_FN [start args...] [-- wrk args...]: start, measure, stop;
# a failure is counted and reported but does not stop the other cases.
bench_case() {
  local workload="$1" system="$2" path="$3" start_fn="$4"
  shift 4
  system_selected "$system" || return 0
  local start_args=() wrk_args=()
  while [ "$#" -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; wrk_args=("$@"); break; fi
    start_args+=("$1")
    shift
  done
  log "$workload / $system: starting"
  if "$start_fn" "${start_args[@]}" && measure "$workload" "$system" "$path" "${wrk_args[@]}"; then
    stop_server
  else
    log "$workload / $system: FAILED"
    BENCH_FAILURES=$((BENCH_FAILURES + 1))
    stop_server
  fi
}

cpu_busy_percent() {
  local a b
  a="$(head -n1 /proc/stat)"
  sleep 1
  b="$(head -n1 /proc/stat)"
  printf '%s\n%s\n' "$a" "$b" | awk '
    { idle[NR] = $5 + $6; total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i }
    END { t = total[2] - total[1]; printf "%d\n", (t > 0 ? 100 * (1 - (idle[2] - idle[1]) / t) : 0) }'
}

print_header() {
  local cpu
  cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
  echo "Basalt benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "Machine: $(nproc) CPUs (${cpu:-unknown}), loopback only"
  local pinning="not pinned"
  [ -n "$BENCH_SERVER_CPUS" ] && pinning="pinned to CPU $BENCH_SERVER_CPUS (BENCH_SERVER_CPUS)"
  echo "Client:  wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, ${BENCH_WARMUP}s warm-up + ${BENCH_DURATION}s measured," \
       "pinned to CPU $BENCH_WRK_CPU with taskset (wrk uses about one core);" \
       "servers $pinning," \
       "in healthz_pinned on the CPUs wrk does not use"
  echo "CPU/req: server (+ its PostgreSQL cluster's) utime+stime from /proc over the measured window / requests;" \
       "memory: PSS summed over those processes at the end"
  echo "Data:    $BENCH_RECORDS seeded records per case; PostgreSQL with fsync and synchronous_commit on (shared_buffers 128MB, wal_init_zero off: scripts/pg-test-cluster.sh), SQLite synchronous=FULL"
  # Busy share of all CPUs over one second before the run (other builds or tests skew results).
  local busy
  busy="$(cpu_busy_percent)"
  echo "Load:    machine ${busy}% busy in the second before the run"
  if [ "$busy" -gt 15 ]; then
    echo "WARNING: other work is running on this machine; req/s and latency will be lower than on an idle one"
  fi
  echo
}
