-- login: POST /api/v1/auth/login for the seeded user (BENCH_AUTH_DIR/email); every request runs
-- one argon2id verification on Basalt's hashing pool, so this measures the login rate.
local dir = assert(os.getenv("BENCH_AUTH_DIR"), "BENCH_AUTH_DIR is not set")
local f = assert(io.open(dir .. "/email", "r"))
local email = f:read("*l")
f:close()
wrk.method = "POST"
wrk.path = "/api/v1/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"' .. email .. '","password":"bench password 0123456789"}'
