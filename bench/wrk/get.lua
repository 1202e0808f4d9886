-- GET the URL given on the command line, with the bearer token from BENCH_TOKEN.
local common = require("common")
common.authorize()
setup = common.setup
done = common.done
