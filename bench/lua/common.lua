-- Shared by the data-API wrk scripts (bench/run.sh). Configured through the environment, which
-- bench/lib.sh sets per case:
--   BENCH_API        basalt (also used for the nginx ceiling) | parse
--   BENCH_IDS_FILE   one record id per line, written while seeding (get_by_id)
--   BENCH_VIEWS_MAX  upper bound (exclusive) of the seeded `views` values (default 100000)
--   BENCH_RECORDS_PATH  the records path (default /api/v1/collections/posts/records; auth workload)
--   BENCH_BEARER_FILE   a file holding an access token sent as `Authorization: Bearer` (auth workload)
local M = {}

M.api = os.getenv("BENCH_API") or "basalt"
M.views_max = tonumber(os.getenv("BENCH_VIEWS_MAX") or "100000")

-- Every wrk thread has its own Lua state: seed each one differently.
local addr = tonumber((tostring({}):match("0x(%x+)") or "0"), 16) or 0
math.randomseed(os.time() + addr % 1000003)
for _ = 1, 10 do math.random() end

if M.api == "parse" then
  wrk.headers["X-Parse-Application-Id"] = "basalt-bench-app"
  wrk.headers["X-Parse-REST-API-Key"] = "basalt-bench-rest-key"
  M.records = "/parse/classes/Post"
elseif M.api == "basalt" then
  M.records = os.getenv("BENCH_RECORDS_PATH") or "/api/v1/collections/posts/records"
  local bearer = os.getenv("BENCH_BEARER_FILE")
  if bearer and #bearer > 0 then
    local f = assert(io.open(bearer, "r"))
    wrk.headers["Authorization"] = "Bearer " .. f:read("*l")
    f:close()
  end
else
  error("BENCH_API must be basalt or parse, not " .. tostring(M.api))
end

function M.load_ids()
  local path = os.getenv("BENCH_IDS_FILE")
  assert(path and #path > 0, "BENCH_IDS_FILE is not set")
  local f = assert(io.open(path, "r"))
  local ids = {}
  for line in f:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  f:close()
  assert(#ids > 0, "no ids in " .. path)
  return ids
end

function M.urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

return M
