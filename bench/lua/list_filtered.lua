-- list_filtered: the 20 most viewed records with views > X, X random in [0, 98% of the range)
-- so that every answer has a full page (views are seeded uniformly in [0, BENCH_VIEWS_MAX)).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local c = require("common")
local top = math.floor(c.views_max * 0.98)

local build
if c.api == "parse" then
  build = function(x)
    return c.records .. "?where=" .. c.urlencode('{"views":{"$gt":' .. x .. '}}') .. "&order=-views&limit=20"
  end
else
  build = function(x)
    return c.records .. "?filter=views%20%3E%20" .. x .. "&sort=-views&limit=20"
  end
end

function request()
  return wrk.format("GET", build(math.random(0, top - 1)))
end
