-- refresh: POST /api/v1/auth/refresh in chains. Refresh tokens rotate on every use (and reusing a
-- spent one revokes its family), so each wrk thread starts with its share of the seeded tokens
-- (BENCH_AUTH_DIR/refresh_tokens.txt, at least one per connection) and sends each new token it
-- receives. A failed refresh ends its chain (it shows as a non-2xx answer).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local tokens = {}

function init(args)
  local dir = assert(os.getenv("BENCH_AUTH_DIR"), "BENCH_AUTH_DIR is not set")
  local n = tonumber(os.getenv("BENCH_THREADS_N") or "1")
  local i = 0
  for line in io.lines(dir .. "/refresh_tokens.txt") do
    if #line > 0 and i % n == index then tokens[#tokens + 1] = line end
    i = i + 1
  end
end

function request()
  local token = table.remove(tokens)
  if token == nil then token = "exhausted" end
  return wrk.format("POST", "/api/v1/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local next_token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if next_token then tokens[#tokens + 1] = next_token end
end
