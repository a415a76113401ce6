-- get_by_id: GET one record by a random seeded id (ids loaded once per wrk thread).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local c = require("common")
local ids = c.load_ids()
local n = #ids
local prefix = c.records .. "/"

function request()
  return wrk.format("GET", prefix .. ids[math.random(n)])
end
