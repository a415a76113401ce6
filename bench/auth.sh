# Sourced by bench/run.sh: the auth workload (identity and access cost, issue 4).
#   auth_get_public   GET a record by id, anonymous, on a collection with public rules
#   auth_get_owner    the same GET with a user's JWT on a collection whose view rule is
#                     `owner = @request.auth.id`: the token verification, the access stage (stored
#                     roles, cached) and the rule compiled into the query. The ratio of the two rows
#                     is the cost of auth + rules (target: at most 15% of throughput).
#   auth_login        POST /api/v1/auth/login: bounded by argon2id on auth.hash_threads workers.
#   auth_refresh      POST /api/v1/auth/refresh in rotation chains (bench/lua/refresh.lua).
# Basalt on SQLite with rate limiting off: the tight per-route limits on login and refresh would
# otherwise refuse the load (their cost is in the data workloads' numbers).

start_basalt_auth() {  # public|owner|login|refresh
  local variant="$1"
  start_basalt "BASALT_AUTH__ADMIN_TOKEN=$BENCH_ADMIN_TOKEN" "BASALT_RATE_LIMIT__ENABLED=false" || return 1
  BENCH_AUTH_DIR="$BENCH_TMP/auth-$SERVER_PORT"
  mkdir -p "$BENCH_AUTH_DIR"
  export BENCH_AUTH_DIR BENCH_API=basalt BENCH_THREADS_N="$BENCH_THREADS"
  if ! timeout "$BENCH_SEED_TIMEOUT" "$PYTHON" "$BENCH_DIR/seed.py" auth "http://127.0.0.1:$SERVER_PORT" \
    "$BENCH_ADMIN_TOKEN" "$BENCH_RECORDS" "$BENCH_AUTH_DIR" "$((BENCH_CONNECTIONS * 2))"; then
    log "auth seeding failed"
    return 1
  fi
  unset BENCH_BEARER_FILE
  case "$variant" in
    public)
      export BENCH_IDS_FILE="$BENCH_AUTH_DIR/open_ids.txt" BENCH_RECORDS_PATH=/api/v1/collections/open/records ;;
    owner)
      export BENCH_IDS_FILE="$BENCH_AUTH_DIR/owned_ids.txt" BENCH_RECORDS_PATH=/api/v1/collections/owned/records \
        BENCH_BEARER_FILE="$BENCH_AUTH_DIR/access_token" ;;
  esac
}

auth_login_case() {
  # Each login waits for an argon2id verification on a few worker threads: 64 connections would
  # only queue (and time out in wrk); 8 keep the workers busy.
  local BENCH_CONNECTIONS=8
  bench_case auth_login basalt-sqlite /api/v1/auth/login start_basalt_auth login -- -s "$BENCH_DIR/lua/login.lua"
}

auth_refresh_case() {
  # A warm-up would spend the seeded refresh tokens (each is single-use), so this case has none.
  local BENCH_WARMUP=0
  bench_case auth_refresh basalt-sqlite /api/v1/auth/refresh start_basalt_auth refresh -- -s "$BENCH_DIR/lua/refresh.lua"
}

workload_auth() {
  bench_case auth_get_public basalt-sqlite /api/v1/collections/open/records start_basalt_auth public \
    -- -s "$BENCH_DIR/lua/get_by_id.lua"
  bench_case auth_get_owner basalt-sqlite /api/v1/collections/owned/records start_basalt_auth owner \
    -- -s "$BENCH_DIR/lua/get_by_id.lua"
  auth_login_case
  auth_refresh_case
  unset BENCH_RECORDS_PATH BENCH_BEARER_FILE
}
