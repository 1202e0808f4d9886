-- PATCH .../complete over many tasks so requests do not queue on one row. Each thread owns
-- every n-th task of the file and always sends the opposite of the task's state, so every
-- request really changes a task (the file says each task's state when the run starts).
-- Arguments: <ids file ("id 0|1" per line)> <path prefix, e.g. /api/u/tasks/> <threads>
local common = require("common")
common.authorize()
wrk.headers["Content-Type"] = "application/json"
setup = common.setup
done = common.done

local mine, prefix
local position = 0

function init(args)
   common.seed_random()
   prefix = args[2]
   local threads = tonumber(args[3])
   mine = {}
   for i, line in ipairs(common.lines(args[1])) do
      if (i - 1) % threads == thread_index then
         local words = common.words(line)
         table.insert(mine, {id = words[1], completed = words[2] == "1"})
      end
   end
   position = math.random(#mine) - 1
end

function request()
   position = position % #mine + 1
   local task = mine[position]
   task.completed = not task.completed
   local body = task.completed and '{"completed":true}' or '{"completed":false}'
   return wrk.format("PATCH", prefix .. task.id .. "/complete", nil, body)
end

function response(status, headers, body)
   common.count(status)
end
