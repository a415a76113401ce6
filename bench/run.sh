#!/usr/bin/env bash
# make bench: measure Basalt against nginx (the ceiling) on loopback, one workload at a time.
# Prints a table and writes one JSON object per line to bench/results/latest.jsonl.
# See bench/lib.sh for the tunables (BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_SYSTEMS...).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

ensure_basalt() {
  if [ -x "$BASALT_BIN" ]; then return 0; fi
  log "building the release preset ($BASALT_BIN missing)"
  (cd "$BENCH_ROOT" && cmake --preset release && cmake --build --preset release -j"$(nproc)")
}

# ---------------------------------------------------------------------------------------------
# Workloads. Add more as functions (records GET/list/create on SQLite and PostgreSQL, the Parse
# Server peer, ...) and list them in WORKLOADS below.

workload_healthz() {
  bench_case healthz nginx /healthz start_nginx
  # Production defaults: per_core I/O model, access log on (written to a file in the temp dir).
  bench_case healthz basalt /healthz start_basalt
  bench_case healthz basalt-no-access-log /healthz start_basalt BASALT_LOG__ACCESS=false
}

read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-healthz}"

main() {
  bench_init
  if system_selected basalt || system_selected basalt-no-access-log; then
    ensure_basalt
    # Benchmark a private copy: a rebuild during the run must not swap or remove the binary.
    cp "$BASALT_BIN" "$BENCH_TMP/basalt"
    BASALT_BIN="$BENCH_TMP/basalt"
  fi
  print_header
  if [ -x "$BASALT_BIN" ]; then echo "Basalt:  $("$BASALT_BIN" version 2>&1 | head -n1)"; echo; fi
  local wl
  for wl in "${WORKLOADS[@]}"; do
    declare -F "workload_$wl" >/dev/null || die "unknown workload: $wl"
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
