-- GET one task at a time, picked at random from a file of task ids.
-- Arguments: <ids file (one "id completed" per line)> <path prefix, e.g. /api/u/tasks/>
local common = require("common")
common.authorize()
setup = common.setup
done = common.done

local ids, prefix

function init(args)
   common.seed_random()
   ids, prefix = {}, args[2]
   for _, line in ipairs(common.lines(args[1])) do
      table.insert(ids, common.words(line)[1])
   end
end

function request()
   return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
