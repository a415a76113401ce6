#!/usr/bin/env bash
# Installs every Debian package Basalt needs to build, test and benchmark.
# Idempotent: packages already present are skipped; uses sudo when not root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev gcovr git curl
  # clang 16 for libFuzzer: clang 14 cannot use libstdc++ 12's std::expected (needs P0848)
  clang-16 libclang-rt-16-dev
  # libraries
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev sqlite3 libre2-dev
  libpq-dev postgresql postgresql-contrib libsodium-dev
  # tcmalloc (gperftools) for the server binary: per-thread caches, fewer cycles per allocation
  libgoogle-perftools-dev
  # queue peer for the benchmark (BullMQ on Redis)
  redis-server
  # benchmark and test peers
  wrk nginx-light openssl procps python3 python3-yaml
)

# Node.js for the npm-based test validators (tests/contract): Debian's nodejs (18) and npm, unless
# a node >= 18 is already installed (e.g. a newer one from NodeSource), which must not be replaced.
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 18 ] 2>/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light's package starts a system nginx on port 80; Basalt's scripts run their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
$SUDO pkill -x nginx >/dev/null 2>&1 || true
# postgresql's package creates (and may start) a system cluster on 5432; tests run their own
# throwaway cluster (scripts/pg-test-cluster.sh).
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _; do $SUDO pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true; done
fi
echo "install-deps: done"
