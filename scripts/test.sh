#!/usr/bin/env bash
# make test: install deps, build the `ci` preset (ASan+UBSan+gcov), run every unit and integration
# test, fuzz the HTTP parser for a bounded time, print coverage. Exits non-zero if anything failed.
#
# Tunables: FUZZ_RUNS (200000), FUZZ_SECONDS (60), SKIP_FUZZ=1, SKIP_DEPS=1, CTEST_ARGS (extra).
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

step "Building the ci preset (ASan + UBSan + gcov)"
cmake --preset ci
cmake --build --preset ci -j"$JOBS"

# Integration tests start real servers and open many sockets.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || warn "could not raise ulimit -n to $hard (now $(ulimit -n))"

# Coverage should describe this run only.
find build/ci -name '*.gcda' -delete

step "Running unit and integration tests (ctest, ASAN_OPTIONS=$ASAN_OPTIONS)"
status=0
# shellcheck disable=SC2086
ctest --preset ci -j2 --output-on-failure --timeout 600 --no-tests=error ${CTEST_ARGS:-} || status=$?
record "ctest (unit + integration)" "$status"

# ---------------------------------------------------------------------------------------------
# Fuzzing: the HTTP request parser, bounded in runs and time, seeded from tests/fuzz/corpus/http.
if [ "${SKIP_FUZZ:-0}" = 1 ]; then
  RESULTS+=("SKIP  fuzz (SKIP_FUZZ=1)")
elif [ ! -f tests/fuzz/http_request_fuzz.cpp ]; then
  RESULTS+=("SKIP  fuzz (tests/fuzz/http_request_fuzz.cpp not written yet)")
else
  step "Fuzzing the HTTP parser (basalt_fuzz_http: -runs=$FUZZ_RUNS -max_total_time=$FUZZ_SECONDS)"
  status=0
  if ! cmake --preset fuzz >"$TMP/fuzz-configure.log" 2>&1; then
    cat "$TMP/fuzz-configure.log" >&2
    record "fuzz: configure the fuzz preset" 1
  elif ! ninja -C build/fuzz -t targets all >"$TMP/fuzz-targets.txt" 2>/dev/null \
       || ! grep -q '^basalt_fuzz_http:' "$TMP/fuzz-targets.txt"; then
    warn "tests/fuzz/http_request_fuzz.cpp exists but the fuzz preset defines no basalt_fuzz_http target"
    record "fuzz: basalt_fuzz_http target defined" 1
  elif ! cmake --build --preset fuzz --target basalt_fuzz_http -j"$JOBS"; then
    record "fuzz: build basalt_fuzz_http" 1
  else
    fuzzer="$(find build/fuzz -type f -name basalt_fuzz_http -perm -u+x | head -n1)"
    artifacts="$ROOT/build/fuzz/artifacts"
    mkdir -p "$TMP/corpus" "$artifacts"
    # The first corpus directory receives new inputs: a temp dir, so the repo's seeds stay as written.
    "$fuzzer" -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$TMP/corpus" tests/fuzz/corpus/http || status=$?
    if [ "$status" -ne 0 ]; then warn "fuzzer failed; reproducer(s) in $artifacts"; fi
    record "fuzz: basalt_fuzz_http" "$status"
  fi
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
