-- create: POST one new record with a JSON body (title, ~200-character body, views, owner).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local c = require("common")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_CREATE_ADMIN=1 (bench/run.sh sets BENCH_CREATE_TOKEN): send the admin token, so every
-- create is also an admin_token.used audit entry.
local token = os.getenv("BENCH_CREATE_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local body_text = string.rep("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 4):sub(1, 200)
local tag = string.format("%06d", math.random(0, 999999))
local counter = 0

function request()
  counter = counter + 1
  local body = '{"title":"bench ' .. tag .. '-' .. counter .. '","body":"' .. body_text ..
      '","views":' .. math.random(0, c.views_max - 1) .. ',"owner":"user-' .. (counter % 100) .. '"}'
  return wrk.format("POST", c.records, nil, body)
end
