#!/usr/bin/env bash
# make test: install deps, build the `ci` preset (ASan+UBSan+gcov), run every unit and integration
# test, run every libFuzzer target for a bounded time, print coverage. Exits non-zero if anything failed.
#
# Tunables: FUZZ_RUNS (200000), FUZZ_SECONDS (60), SKIP_FUZZ=1, SKIP_RELEASE=1, SKIP_DEPS=1, CTEST_ARGS (extra).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

FUZZ_RUNS="${FUZZ_RUNS:-200000}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
JOBS="$(nproc 2>/dev/null || echo 2)"

step() { printf '\n==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/basalt-test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

declare -a RESULTS=()
FAILED=0
record() {  # record NAME STATUS
  if [ "$2" -eq 0 ]; then RESULTS+=("PASS  $1"); else RESULTS+=("FAIL  $1 (exit $2)"); FAILED=1; fi
}

if [ "${SKIP_DEPS:-0}" != 1 ]; then
  step "Installing dependencies"
  scripts/install-deps.sh
fi

# The OpenAPI contract test (tests/contract, ctest contract_test) validates with npm packages.
# Installed exactly from package-lock.json; a failed install fails the run (the test would skip).
if command -v npm >/dev/null 2>&1; then
  step "Installing the contract-test validators (npm ci in tests/contract)"
  status=0
  (cd tests/contract && npm ci --no-audit --no-fund) || status=$?
  record "npm ci (tests/contract)" "$status"
else
  warn "npm not found: the OpenAPI contract test will be skipped (scripts/install-deps.sh installs it)"
fi

step "Building the ci preset (ASan + UBSan + gcov)"
cmake --preset ci
cmake --build --preset ci -j"$JOBS"

# Integration tests start real servers and open many sockets.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || warn "could not raise ulimit -n to $hard (now $(ulimit -n))"

# Coverage should describe this run only.
find build/ci -name '*.gcda' -delete

# --- Services for the tests (store owners) -----------------------------------------------------
# A throwaway PostgreSQL cluster so the store suites also run against PostgreSQL; stopped and
# removed on exit by the trap. Without it the PostgreSQL tests would only be skipped, so a failure
# to start is a test failure.
# Not under $TMP: that is mode 700 and the server runs as the `postgres` user.
PG_DIR="${TMPDIR:-/tmp}/basalt-pg.$$"
trap 'scripts/pg-test-cluster.sh stop "$PG_DIR" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
if BASALT_TEST_POSTGRES_URL="$(scripts/pg-test-cluster.sh start "$PG_DIR")"; then
  export BASALT_TEST_POSTGRES_URL
else
  warn "could not start the PostgreSQL test cluster (scripts/pg-test-cluster.sh)"
  record "start the PostgreSQL test cluster" 1
fi
# --- end of services ------------------------------------------------------------------------------

step "Running unit and integration tests (ctest, ASAN_OPTIONS=$ASAN_OPTIONS)"
status=0
# shellcheck disable=SC2086
ctest --preset ci -j2 --output-on-failure --timeout 600 --no-tests=error ${CTEST_ARGS:-} || status=$?
record "ctest (unit + integration)" "$status"

# ---------------------------------------------------------------------------------------------
# Fuzzing: every basalt_fuzz_<name> target of the fuzz preset (clang libFuzzer), each bounded in
# runs and time, seeded from tests/fuzz/corpus/<name>/ and using tests/fuzz/corpus/<name>.dict if
# present. basalt_fuzz_http (the HTTP request path) is required once tests/fuzz/http_request_fuzz.cpp exists.
if [ "${SKIP_FUZZ:-0}" = 1 ]; then
  RESULTS+=("SKIP  fuzz (SKIP_FUZZ=1)")
elif [ ! -f tests/fuzz/CMakeLists.txt ]; then
  RESULTS+=("SKIP  fuzz (no tests/fuzz/CMakeLists.txt yet)")
else
  step "Building fuzz targets (fuzz preset)"
  fuzz_targets=()
  if ! cmake --preset fuzz >"$TMP/fuzz-configure.log" 2>&1; then
    cat "$TMP/fuzz-configure.log" >&2
    record "fuzz: configure the fuzz preset" 1
  elif ! ninja -C build/fuzz -t targets all >"$TMP/fuzz-targets.txt" 2>/dev/null; then
    record "fuzz: list fuzz targets" 1
  else
    mapfile -t fuzz_targets < <(grep -oE '^basalt_fuzz_[A-Za-z0-9_]+:' "$TMP/fuzz-targets.txt" | tr -d ':' | sort -u)
    if [ -f tests/fuzz/http_request_fuzz.cpp ] && ! printf '%s\n' "${fuzz_targets[@]}" | grep -qx basalt_fuzz_http; then
      warn "tests/fuzz/http_request_fuzz.cpp exists but the fuzz preset defines no basalt_fuzz_http target"
      record "fuzz: basalt_fuzz_http target defined" 1
    fi
    if [ "${#fuzz_targets[@]}" -eq 0 ]; then
      RESULTS+=("SKIP  fuzz (no basalt_fuzz_* targets)")
    elif ! cmake --build --preset fuzz -j"$JOBS" --target "${fuzz_targets[@]}"; then
      record "fuzz: build ${fuzz_targets[*]}" 1
      fuzz_targets=()
    fi
  fi
  artifacts="$ROOT/build/fuzz/artifacts"
  for target in "${fuzz_targets[@]}"; do
    name="${target#basalt_fuzz_}"
    fuzzer="$(find build/fuzz -type f -name "$target" -perm -u+x | head -n1)"
    step "Fuzzing $name ($target: -runs=$FUZZ_RUNS -max_total_time=$FUZZ_SECONDS)"
    # The first corpus directory receives new inputs: a temp dir, so the repo's seeds stay as written.
    mkdir -p "$TMP/corpus-$name" "$artifacts"
    args=(-runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1
          -artifact_prefix="$artifacts/$name-" "$TMP/corpus-$name")
    if [ -d "tests/fuzz/corpus/$name" ]; then args+=("tests/fuzz/corpus/$name"); fi
    if [ -f "tests/fuzz/corpus/$name.dict" ]; then args=(-dict="tests/fuzz/corpus/$name.dict" "${args[@]}"); fi
    status=0
    "$fuzzer" "${args[@]}" >"$TMP/fuzz-$name.log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done [0-9]+ runs|^stat::number_of_executed_units' "$TMP/fuzz-$name.log" || true
    if [ "$status" -ne 0 ]; then
      tail -n 80 "$TMP/fuzz-$name.log" >&2
      warn "$target failed; reproducer(s) in $artifacts/$name-*"
    fi
    record "fuzz: $target" "$status"
  done
fi

# ---------------------------------------------------------------------------------------------
# The binary `make run` starts (release preset: -O2, LTO, tcmalloc) is not the one the suite runs
# under ASan: build it and smoke-test it over real sockets (scripts/release-smoke.sh).
if [ "${SKIP_RELEASE:-0}" = 1 ]; then
  RESULTS+=("SKIP  release build + smoke (SKIP_RELEASE=1)")
else
  step "Building the release preset and smoke-testing make run's binary"
  status=0
  { cmake --preset release >"$TMP/release-configure.log" 2>&1 &&
      cmake --build --preset release -j"$JOBS" --target basalt; } || status=$?
  if [ "$status" -eq 0 ]; then
    scripts/release-smoke.sh build/release/basalt || status=$?
  else
    cat "$TMP/release-configure.log" >&2 || true
  fi
  record "release build + smoke (scripts/release-smoke.sh)" "$status"
fi

# ---------------------------------------------------------------------------------------------
# Coverage of src/ by the ci run. A gcovr problem is a warning, never a test failure.
step "Coverage (gcovr, src/ only)"
mkdir -p build/ci/coverage
if gcovr -r . --object-directory build/ci --filter 'src/' --gcov-ignore-parse-errors \
     --exclude-unreachable-branches --exclude-throw-branches -j "$JOBS" \
     --txt build/ci/coverage.txt --html-details build/ci/coverage/index.html \
     --print-summary build/ci; then
  cat build/ci/coverage.txt
  echo "HTML report: build/ci/coverage/index.html"
else
  warn "gcovr failed; no coverage summary (tests results are unaffected)"
fi

step "Summary"
printf '  %s\n' "${RESULTS[@]}"
if [ "$FAILED" -ne 0 ]; then
  echo "make test: FAILED"
  exit 1
fi
echo "make test: all passed"
