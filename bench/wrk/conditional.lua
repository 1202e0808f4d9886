-- GET the URL given on the command line, with the bearer token from BENCH_TOKEN and, when
-- BENCH_IF_NONE_MATCH is set, that ETag as If-None-Match (a calendar app's poll); counts statuses.
local common = require("common")
common.authorize()
local tag = os.getenv("BENCH_IF_NONE_MATCH")
if tag and tag ~= "" then
   wrk.headers["If-None-Match"] = tag
end
setup = common.setup
done = common.done

function response(status, headers, body)
   common.count(status)
end
