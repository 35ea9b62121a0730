-- wrk: POST /v1/events for a new entity on every request; bench.sh's two rules answer each one
-- (a reminder from a template, and a flag).
local counter = 0
local headers = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

function request()
  counter = counter + 1
  local body = string.format(
    '{"event_type":"interview_completed","entity_type":"interviewer","entity_id":"%d-%d",' ..
    '"data":{"candidate":"C-%d","email":"i%d@example.com"}}', thread_id, counter, counter, counter)
  return wrk.format("POST", "/v1/events", headers, body)
end
