-- A day's traffic of many users, each with their own token: 60 % list the open tasks, 20 %
-- read one task, 10 % create a task, 10 % complete or reopen one. Each thread owns every n-th
-- user, so the state it keeps of each task stays true.
-- Arguments: <users file ("user token id:0|1 id:0|1 ..." per line)> <marker> <threads>
local common = require("common")
setup = common.setup
done = common.done

local users, marker
local serial = 0

function init(args)
   common.seed_random()
   marker = args[2]
   local threads = tonumber(args[3])
   users = {}
   for i, line in ipairs(common.lines(args[1])) do
      if (i - 1) % threads == thread_index then
         local words = common.words(line)
         local user = {
            base = "/api/" .. words[1] .. "/tasks",
            headers = {["Authorization"] = "Bearer " .. words[2], ["Content-Type"] = "application/json"},
            tasks = {},
         }
         for k = 3, #words do
            local id, state = string.match(words[k], "([^:]+):(%d)")
            table.insert(user.tasks, {id = id, completed = state == "1"})
         end
         table.insert(users, user)
      end
   end
end

function request()
   local user = users[math.random(#users)]
   local roll = math.random(100)
   if roll <= 60 then
      return wrk.format("GET", user.base .. "?status=pending&limit=50", user.headers)
   elseif roll <= 80 then
      return wrk.format("GET", user.base .. "/" .. user.tasks[math.random(#user.tasks)].id, user.headers)
   elseif roll <= 90 then
      serial = serial + 1
      return wrk.format("POST", user.base, user.headers, common.task_body(marker, serial))
   end
   local task = user.tasks[math.random(#user.tasks)]
   task.completed = not task.completed
   local body = task.completed and '{"completed":true}' or '{"completed":false}'
   return wrk.format("PATCH", user.base .. "/" .. task.id .. "/complete", user.headers, body)
end

function response(status, headers, body)
   common.count(status)
end
