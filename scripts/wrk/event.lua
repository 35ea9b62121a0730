-- wrk: POST /v1/events for a new entity on every request; bench.sh's two rules answer each one
-- (a reminder from a template, and a flag).
local counter = 0
-- thread_id is set per thread by setup() (a global of that thread's Lua state).
-- NUDGE_BENCH_TOKEN, when set, is sent as the bearer token (bench.sh creates one).
local token = os.getenv("NUDGE_BENCH_TOKEN")
local headers = {["Content-Type"] = "application/json"}
if token then headers["Authorization"] = "Bearer " .. token end

function setup(thread)
  thread:set("thread_id", math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"event_type":"interview_completed","entity_type":"interviewer","entity_id":"%d-%d",' ..
    '"data":{"candidate":"C-%d","email":"i%d@example.com"}}', thread_id, counter, counter, counter)
  return wrk.format("POST", "/v1/events", headers, body)
end
