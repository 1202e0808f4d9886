-- POST new tasks for many users, each with their own token, picked at random per request: the
-- writes of many users at once (unlike create.lua, which writes for one user and so queues on
-- that user's change number). Titles carry a marker so the harness can count the rows stored.
-- Arguments: <users file ("user token" per line)> <marker>
local common = require("common")
setup = common.setup
done = common.done

local users, marker
local serial = 0

function init(args)
   common.seed_random()
   marker = args[2]
   users = {}
   for _, line in ipairs(common.lines(args[1])) do
      local words = common.words(line)
      table.insert(users, {
         path = "/api/" .. words[1] .. "/tasks",
         headers = {["Authorization"] = "Bearer " .. words[2], ["Content-Type"] = "application/json"},
      })
   end
end

function request()
   local user = users[math.random(#users)]
   serial = serial + 1
   return wrk.format("POST", user.path, user.headers, common.task_body(marker, serial))
end

function response(status, headers, body)
   common.count(status)
end
