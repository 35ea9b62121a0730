-- What the wrk scripts share, loaded with dofile by each: the request headers (JSON, and
-- NUDGE_BENCH_TOKEN as the bearer token when set: bench.sh creates one), and setup(), which gives
-- each thread a random thread_id (a global of that thread's Lua state) so its identities are new.
local token = os.getenv("NUDGE_BENCH_TOKEN")
local headers = {["Content-Type"] = "application/json"}
if token then headers["Authorization"] = "Bearer " .. token end

function setup(thread)
  thread:set("thread_id", math.random(1, 1e9))
end

return headers
