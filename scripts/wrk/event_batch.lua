-- wrk: POST /v1/events/batch with 1,000 events for new entities per request.
local counter = 0
-- thread_id is set per thread by setup() (a global of that thread's Lua state).

function setup(thread)
  thread:set("thread_id", math.random(1, 1e9))
end

function request()
  local items = {}
  for i = 1, 1000 do
    counter = counter + 1
    items[i] = string.format(
      '{"event_type":"interview_completed","entity_type":"interviewer","entity_id":"%d-%d",' ..
      '"data":{"candidate":"C-%d","email":"i%d@example.com"}}', thread_id, counter, counter,
      counter)
  end
  local body = '{"items":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v1/events/batch", {["Content-Type"] = "application/json"}, body)
end
