-- wrk: POST /v1/events for a new entity on every request; bench.sh's two rules answer each one
-- (a reminder from a template, and a flag).
local counter = 0
-- thread_id is set per thread by setup() (a global of that thread's Lua state).

function setup(thread)
  thread:set("thread_id", math.random(1, 1e9))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"event_type":"interview_completed","entity_type":"interviewer","entity_id":"%d-%d",' ..
    '"data":{"candidate":"C-%d","email":"i%d@example.com"}}', thread_id, counter, counter, counter)
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
