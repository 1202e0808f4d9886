-- Shared by every bench script: the bearer token, per-thread status counts, and a done()
-- that prints one line of JSON ("BENCH_JSON {...}") for bench/run.py to read.
--
-- wrk runs each thread in its own Lua state: setup() and done() run in the main state, and
-- done() reads every thread's counts back with thread:get().
local M = {}

local threads = {}

-- Per-thread globals, read back by done() and set by setup().
statuses = {}
thread_index = 0

function M.authorize()
   local token = os.getenv("BENCH_TOKEN")
   if token and token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

function M.setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function M.seed_random()
   math.randomseed(os.time() * 1000 + thread_index * 7919)
   for _ = 1, 10 do math.random() end
end

function M.count(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function M.lines(path)
   local found = {}
   local file = assert(io.open(path, "r"))
   for line in file:lines() do
      if line ~= "" then table.insert(found, line) end
   end
   file:close()
   return found
end

function M.words(line)
   local found = {}
   for word in string.gmatch(line, "%S+") do table.insert(found, word) end
   return found
end

-- A JSON string literal for the ASCII text these scripts build.
function M.quote(text)
   return '"' .. string.gsub(text, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

local TAGS = {"work", "home", "urgent", "errands", "health", "finance", "family", "Shopping", "reading",
              "travel", "garden", "car", "kids", "school", "fitness", "music", "admin", "later", "waiting",
              "Ideas", "phone", "email", "weekend", "project-x", "house", "pets", "taxes", "Birthday",
              "cooking", "learning"}
local TITLES = {"Buy milk", "Call the plumber", "Email Anna about the offer", "Book dentist appointment",
                "Pay the electricity bill", "Review pull request", "Plan the weekend trip",
                "Renew car insurance", "Water the plants", "Prepare slides for Monday"}
local PRIORITIES = {"none", "low", "medium", "high"}

-- A create body like a client sends: title (with a marker the harness counts rows by),
-- priority, a few tags, and a due date most of the time.
function M.task_body(marker, serial)
   local tags, picked = {}, {}
   for _ = 1, math.random(0, 3) do
      local tag = TAGS[math.random(#TAGS)]
      if not picked[tag] then
         picked[tag] = true
         table.insert(tags, M.quote(tag))
      end
   end
   local due = "null"
   if math.random() < 0.65 then
      due = os.date("!\"%Y-%m-%dT%H:%M:00Z\"", os.time() + math.random(0, 60 * 86400))
   end
   local title = string.format("%s %d-%d %s", marker, thread_index, serial, TITLES[math.random(#TITLES)])
   return string.format('{"title":%s,"priority":"%s","tags":[%s],"due_at":%s}',
                        M.quote(title), PRIORITIES[math.random(#PRIORITIES)], table.concat(tags, ","), due)
end

local function percentile(latency, p)
   local value = latency:percentile(p)
   return value == value and value or 0 -- NaN when nothing completed
end

function M.done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses") or {}) do
         local key = tostring(status)
         counts[key] = (counts[key] or 0) + n
      end
   end
   local parts = {}
   for key, n in pairs(counts) do table.insert(parts, string.format('"%s":%d', key, n)) end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
      '"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      percentile(latency, 50), percentile(latency, 90), percentile(latency, 99), percentile(latency, 99.9),
      table.concat(parts, ",")))
end

return M
