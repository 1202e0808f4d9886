-- One greedy user, as fast as its connections go, never waiting for Retry-After: POST
-- /api/{user}/batch with <operations> creates each, or, when <operations> is 0, POST
-- /api/{user}/tasks with one task each. Besides the statuses, counts under made-up keys:
--   "429:<problem type>"   each 429 by its problem type (rate-limited, user-busy, ...)
--   "429:no-retry-after"   a 429 without Retry-After
--   "429:no-ratelimit"     a 429 without a RateLimit field
--   "5xx:<problem type>"   each 5xx by its problem type
-- Arguments: <path> <marker> <operations>
local common = require("common")
common.authorize()
wrk.headers["Content-Type"] = "application/json"
setup = common.setup
done = common.done

local path, marker, operations
local serial = 0

function init(args)
   common.seed_random()
   path, marker, operations = args[1], args[2], tonumber(args[3])
end

function request()
   if operations == 0 then
      serial = serial + 1
      return wrk.format("POST", path, nil, common.task_body(marker, serial))
   end
   local creates = {}
   for _ = 1, operations do
      serial = serial + 1
      creates[#creates + 1] = '{"op":"create","body":' .. common.task_body(marker, serial) .. '}'
   end
   return wrk.format("POST", path, nil, '{"operations":[' .. table.concat(creates, ",") .. ']}')
end

local function header(headers, name)
   return headers[name] or headers[string.lower(name)]
end

local function problem_type(body)
   return string.match(body or "", '"type"%s*:%s*"[^"]-/?([%w%-]+)"') or "unknown"
end

function response(status, headers, body)
   common.count(status)
   if status == 429 then
      common.count("429:" .. problem_type(body))
      if not header(headers, "Retry-After") then common.count("429:no-retry-after") end
      if not header(headers, "RateLimit") then common.count("429:no-ratelimit") end
   elseif status >= 500 then
      common.count("5xx:" .. problem_type(body))
   end
end
