-- POST new tasks; titles carry a marker so the harness can count the rows that were stored
-- and compare them with the 201s counted here.
-- Arguments: <path, e.g. /api/u/tasks> <marker>
local common = require("common")
common.authorize()
wrk.headers["Content-Type"] = "application/json"
setup = common.setup
done = common.done

local path, marker
local serial = 0

function init(args)
   common.seed_random()
   path, marker = args[1], args[2]
end

function request()
   serial = serial + 1
   return wrk.format("POST", path, nil, common.task_body(marker, serial))
end

function response(status, headers, body)
   common.count(status)
end
