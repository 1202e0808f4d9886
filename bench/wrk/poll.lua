-- A calendar app polling a feed as fast as it can: GET with the ETag of the last 200 this
-- thread saw as If-None-Match, so that most answers are 304 until the owner changes something.
-- No token: a feed's secret URL is its credential. Counts statuses.
local common = require("common")
setup = common.setup
done = common.done

local etag = nil

function request()
   if etag then wrk.headers["If-None-Match"] = etag end
   return wrk.format("GET")
end

function response(status, headers, body)
   common.count(status)
   if status == 200 then
      etag = headers["etag"] or headers["ETag"] or etag
   end
end
